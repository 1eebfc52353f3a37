// SPDX-License-Identifier: GPL-2.0
/*
 * Static-inline and struct-layout helpers for httpblk's Rust code (see helpers.h).
 * No driver logic lives here.
 */
#include <crypto/hash.h>
#include <linux/highmem.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/vmalloc.h>

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

void httpblk_init_work(struct work_struct *work, work_func_t func)
{
	INIT_WORK(work, func);
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
