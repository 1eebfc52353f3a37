// SPDX-License-Identifier: GPL-2.0
/*
 * Static-inline and struct-layout helpers for httpblk's Rust code (see helpers.h).
 * No driver logic lives here.
 */
#include <crypto/hash.h>
#include <crypto/sha2.h>
#include <linux/crypto.h>
#include <linux/highmem.h>
#include <linux/lz4.h>
#include <linux/lzo.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/shrinker.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#include <linux/zlib.h>
#include <linux/zstd.h>

#include "helpers.h"

static struct {
	struct miscdevice misc;
	void *ctx;
} control;

int httpblk_misc_register(const struct file_operations *fops, void *ctx)
{
	control.misc.minor = MISC_DYNAMIC_MINOR;
	control.misc.name = "httpblk-control";
	control.misc.mode = 0600;
	control.misc.fops = fops;
	control.ctx = ctx;
	return misc_register(&control.misc);
}

void httpblk_misc_deregister(void)
{
	misc_deregister(&control.misc);
}

/* misc_open() leaves the miscdevice in private_data; the driver's open() replaces it. */
void *httpblk_misc_ctx(struct file *file)
{
	return file->private_data == &control.misc ? control.ctx : NULL;
}

/* vmalloc_user() is a macro (allocation profiling) since 6.10. */
void *httpblk_vmalloc_user(unsigned long size)
{
	return vmalloc_user(size);
}

/* Copies @len bytes of @src (zeros when NULL) to the request's data at byte @skip. */
void httpblk_rq_copy(struct request *rq, unsigned int skip, const void *src, unsigned int len)
{
	unsigned int end = skip + len, pos = 0;
	struct req_iterator iter;
	struct bio_vec bv;

	rq_for_each_segment(bv, rq, iter) {
		unsigned int from = max(pos, skip), to = min(pos + bv.bv_len, end);

		if (from < to) {
			if (src)
				memcpy_to_page(bv.bv_page, bv.bv_offset + from - pos,
					       src + from - skip, to - from);
			else
				memzero_page(bv.bv_page, bv.bv_offset + from - pos, to - from);
		}
		pos += bv.bv_len;
		if (pos >= end)
			break;
	}
}

/* dev_to_disk() is a macro. */
void *httpblk_dev_queuedata(struct device *dev)
{
	return dev_to_disk(dev)->queue->queuedata;
}

/* memalloc_noio_save() and memalloc_noio_restore() are static inlines. */
unsigned int httpblk_noio_save(void)
{
	return memalloc_noio_save();
}

void httpblk_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}

/*
 * The module's tick: one delayed work item on a reclaim-safe workqueue (it ends reads, which
 * reclaim may be waiting for). Rust gives the function; queue_delayed_work() leaves an
 * already pending tick alone.
 */
static struct workqueue_struct *httpblk_tick_wq;
static void (*httpblk_tick_fn)(void);

static void httpblk_tick_work(struct work_struct *work)
{
	httpblk_tick_fn();
}

static DECLARE_DELAYED_WORK(httpblk_tick, httpblk_tick_work);

/*
 * Copies from memory the helper has mapped and may write meanwhile: each byte it changes
 * during the copy comes out old or new, and the caller checks what it copied.
 */
void httpblk_copy_shared(void *dst, const void *src, size_t len)
{
	memcpy(dst, src, len);
}

/* sha256() takes the length as unsigned int on 6.12, size_t on 7.x: one signature for Rust. */
void httpblk_sha256(const u8 *data, size_t len, u8 *out)
{
	sha256(data, len, out);
}

/* An inline function on newer kernels, which bindgen cannot call. */
unsigned int httpblk_jiffies_to_msecs(unsigned long j)
{
	return jiffies_to_msecs(j);
}

int httpblk_tick_setup(void (*fn)(void))
{
	httpblk_tick_fn = fn;
	/*
	 * Unbound: the tick needs no particular CPU, and 7.x warns about a workqueue that
	 * says neither WQ_UNBOUND nor WQ_PERCPU (which not every 6.12 has).
	 */
	httpblk_tick_wq = alloc_workqueue("httpblk_tick", WQ_MEM_RECLAIM | WQ_UNBOUND, 1);
	return httpblk_tick_wq ? 0 : -ENOMEM;
}

void httpblk_tick_arm(unsigned long delay)
{
	queue_delayed_work(httpblk_tick_wq, &httpblk_tick, delay);
}

/* No tick runs or is pending once this returns (the caller arms no more). */
void httpblk_tick_teardown(void)
{
	cancel_delayed_work_sync(&httpblk_tick);
	destroy_workqueue(httpblk_tick_wq);
}

/* try_module_get() is a static inline. */
bool httpblk_module_get(struct module *mod)
{
	return try_module_get(mod);
}

/* shrinker_alloc() is variadic. */
struct shrinker *httpblk_shrinker_alloc(const char *name)
{
	return shrinker_alloc(0, "%s", name);
}

/* A read-only mapping may never become writable through mprotect(). */
int httpblk_vma_prepare(struct vm_area_struct *vma, bool read_only)
{
	if (read_only) {
		if (vma->vm_flags & VM_WRITE)
			return -EPERM;
		vm_flags_clear(vma, VM_MAYWRITE);
	}
	vm_flags_set(vma, VM_DONTCOPY);
	return 0;
}

struct crypto_shash *httpblk_md5_alloc(void)
{
	return crypto_alloc_shash("md5", 0, 0);
}

int httpblk_md5_digest(struct crypto_shash *tfm, const u8 *data, unsigned int len, u8 *out)
{
	return crypto_shash_tfm_digest(tfm, data, len, out);
}

void httpblk_md5_free(struct crypto_shash *tfm)
{
	crypto_free_shash(tfm);
}

/*
 * lzo, lz4 and zstd straight from lib/ (what the crypto API's "lzo", "lz4" and "zstd"
 * compressors call): 7.x removed crypto_comp, and these calls are the same on every kernel.
 * One decoder decodes one whole block per call; zstd's keeps its context in a workspace.
 */
struct httpblk_dec {
	int codec;
	void *workspace;
	zstd_dctx *dctx;
};

struct httpblk_dec *httpblk_dec_alloc(int codec)
{
	struct httpblk_dec *d;
	size_t size;

	if (codec != HTTPBLK_DEC_LZO && codec != HTTPBLK_DEC_LZ4 && codec != HTTPBLK_DEC_ZSTD)
		return ERR_PTR(-EINVAL);
	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return ERR_PTR(-ENOMEM);
	d->codec = codec;
	if (codec == HTTPBLK_DEC_ZSTD) {
		size = zstd_dctx_workspace_bound();
		d->workspace = kvmalloc(size, GFP_KERNEL);
		d->dctx = d->workspace ? zstd_init_dctx(d->workspace, size) : NULL;
		if (!d->dctx) {
			kvfree(d->workspace);
			kfree(d);
			return ERR_PTR(-ENOMEM);
		}
	}
	return d;
}

int httpblk_dec_run(struct httpblk_dec *d, const u8 *src, unsigned int slen, u8 *dst,
		    unsigned int *dlen)
{
	size_t out = *dlen;
	int n;

	switch (d->codec) {
	case HTTPBLK_DEC_LZO:
		if (lzo1x_decompress_safe(src, slen, dst, &out) != LZO_E_OK)
			return -EINVAL;
		break;
	case HTTPBLK_DEC_LZ4:
		n = LZ4_decompress_safe(src, dst, slen, *dlen);
		if (n < 0)
			return -EINVAL;
		out = n;
		break;
	default:
		out = zstd_decompress_dctx(d->dctx, dst, *dlen, src, slen);
		if (zstd_is_error(out))
			return -EINVAL;
		break;
	}
	*dlen = min_t(size_t, out, *dlen);
	return 0;
}

void httpblk_dec_free(struct httpblk_dec *d)
{
	kvfree(d->workspace);
	kfree(d);
}

/*
 * zlib streams for lib/zlib_inflate: struct z_stream is invisible to the bindings, so its
 * setup lives here. One stream decodes one whole zlib block per call.
 */
struct z_stream_s *httpblk_zlib_alloc(void)
{
	struct z_stream_s *s = kzalloc(sizeof(*s), GFP_KERNEL);

	if (!s)
		return NULL;
	s->workspace = kvmalloc(zlib_inflate_workspacesize(), GFP_KERNEL);
	if (!s->workspace) {
		kfree(s);
		return NULL;
	}
	return s;
}

int httpblk_zlib_inflate(struct z_stream_s *s, const u8 *src, unsigned int slen, u8 *dst,
			 unsigned int *dlen)
{
	int ret;

	if (zlib_inflateInit2(s, MAX_WBITS) != Z_OK)
		return -EINVAL;
	s->next_in = src;
	s->avail_in = slen;
	s->next_out = dst;
	s->avail_out = *dlen;
	ret = zlib_inflate(s, Z_FINISH);
	*dlen = s->total_out;
	zlib_inflateEnd(s);
	return ret == Z_STREAM_END ? 0 : -EBADMSG;
}

void httpblk_zlib_free(struct z_stream_s *s)
{
	kvfree(s->workspace);
	kfree(s);
}
