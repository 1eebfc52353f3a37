/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What httpblk's Rust code cannot reach through 6.12's bindings: static-inline helpers and
 * the few structs bindgen does not see (struct miscdevice, struct crypto_shash).
 */
#ifndef HTTPBLK_HELPERS_H
#define HTTPBLK_HELPERS_H

#include <linux/blk-mq.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>

struct httpblk_dec;
struct crypto_shash;
struct z_stream_s;

int httpblk_misc_register(const struct file_operations *fops, void *ctx);
void httpblk_misc_deregister(void);
void *httpblk_misc_ctx(struct file *file);

void *httpblk_vmalloc_user(unsigned long size);
void httpblk_rq_copy(struct request *rq, unsigned int skip, const void *src, unsigned int len);
void *httpblk_dev_queuedata(struct device *dev);
void httpblk_copy_shared(void *dst, const void *src, size_t len);
void httpblk_sha256(const u8 *data, size_t len, u8 *out);
unsigned int httpblk_jiffies_to_msecs(unsigned long j);
int httpblk_tick_setup(void (*fn)(void));
void httpblk_tick_arm(unsigned long delay);
void httpblk_tick_teardown(void);
bool httpblk_module_get(struct module *mod);
unsigned int httpblk_noio_save(void);
void httpblk_noio_restore(unsigned int flags);
struct shrinker *httpblk_shrinker_alloc(const char *name);
int httpblk_vma_prepare(struct vm_area_struct *vma, bool read_only);

struct crypto_shash *httpblk_md5_alloc(void);
int httpblk_md5_digest(struct crypto_shash *tfm, const u8 *data, unsigned int len, u8 *out);
void httpblk_md5_free(struct crypto_shash *tfm);

/* Codecs of httpblk_dec_alloc(); the same numbers in helpers.rs. */
#define HTTPBLK_DEC_LZO 0
#define HTTPBLK_DEC_LZ4 1
#define HTTPBLK_DEC_ZSTD 2
struct httpblk_dec *httpblk_dec_alloc(int codec);
int httpblk_dec_run(struct httpblk_dec *d, const u8 *src, unsigned int slen, u8 *dst,
		    unsigned int *dlen);
void httpblk_dec_free(struct httpblk_dec *d);
struct z_stream_s *httpblk_zlib_alloc(void);
int httpblk_zlib_inflate(struct z_stream_s *s, const u8 *src, unsigned int slen, u8 *dst,
			 unsigned int *dlen);
void httpblk_zlib_free(struct z_stream_s *s);

#endif
