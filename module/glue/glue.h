/* SPDX-License-Identifier: GPL-2.0 */
/*
 * API of the C glue of uksm.ko, as called from Rust (module/sys.rs declares the same
 * functions; keep the two in step).
 */
#ifndef UKSM_GLUE_H
#define UKSM_GLUE_H

#include <linux/types.h>

struct ksm_stable_node;
struct mm_struct;
struct page;
struct task_struct;
struct vm_area_struct;

int uksm_hooks_register(void);
void uksm_hooks_unregister(void);

void uksm_settings_lock(void);
void uksm_settings_unlock(void);
int uksm_sysfs_create(void);
void uksm_sysfs_remove(void);
int uksm_ksm_view_create(void);
void uksm_ksm_view_remove(void);
unsigned long uksm_ksm_meta_bytes(unsigned long nodes, unsigned long items);

/* The Rust attribute tables (module/tunables.rs). */
#define UKSM_ATTRS	0
#define UKSM_KSM_VIEW	1
#define UKSM_ATTR_TABLES	2

struct task_struct *uksm_thread_start(void);
int uksm_thread_stop(struct task_struct *task);
bool uksm_thread_should_stop(void);
void uksm_thread_kick(void);
void uksm_thread_wait(long timeout_ms);
void uksm_cond_resched(void);
void uksm_msleep(unsigned int ms);
bool uksm_is_err(const void *ptr);
long uksm_ptr_err(const void *ptr);

size_t uksm_collect_mms(struct mm_struct **mms, size_t cap);
void uksm_mmput(struct mm_struct *mm);
bool uksm_mmget_not_zero(struct mm_struct *mm);
bool uksm_mmap_read_trylock(struct mm_struct *mm);
struct vm_area_struct *uksm_vma_lookup(struct mm_struct *mm, unsigned long addr);
void uksm_mmap_read_lock(struct mm_struct *mm);
void uksm_mmap_read_unlock(struct mm_struct *mm);
struct vm_area_struct *uksm_find_vma(struct mm_struct *mm, unsigned long addr);

struct mm_struct *uksm_vma_mm(const struct vm_area_struct *vma);
unsigned long uksm_vma_flags(const struct vm_area_struct *vma);
bool uksm_vma_is_anonymous(const struct vm_area_struct *vma);
bool uksm_vma_uffd_armed(struct vm_area_struct *vma);
bool uksm_vma_opted_out(struct vm_area_struct *vma);
unsigned long uksm_vma_start(const struct vm_area_struct *vma);
unsigned long uksm_vma_end(const struct vm_area_struct *vma);
void *uksm_vma_private(const struct vm_area_struct *vma);
void uksm_vma_set_private(struct vm_area_struct *vma, void *slot);
unsigned long uksm_vm_flags_unmergeable(void);

unsigned long uksm_next_page(struct vm_area_struct *vma, unsigned long start,
			     unsigned long end, struct page **pagep);
const void *uksm_kmap_page(struct page *page);
void uksm_kunmap(const void *addr);
void uksm_put_page(struct page *page);
void uksm_lru_add_drain_all(void);
long uksm_ksm_zero_pages(void);
long uksm_mm_ksm_zero_pages(struct mm_struct *mm);
s64 uksm_now_ms(void);
bool uksm_domain_supported(u32 policy);
u64 uksm_mm_domain(struct mm_struct *mm, u32 policy);
u64 uksm_now_ns(void);
u64 uksm_thread_cpu_ns(void);
u64 uksm_random_u64(void);
bool uksm_signal_pending(void);

bool uksm_pages_identical(struct page *a, struct page *b);
bool uksm_page_held_elsewhere(struct page *page);
bool uksm_page_is_ksm(struct page *page);
unsigned long uksm_page_folio_pages(struct page *page, unsigned long *index);
int uksm_node_same(struct ksm_stable_node *node, struct page *page);
struct page *uksm_node_page(struct ksm_stable_node *node);
int uksm_node_mapcount(struct ksm_stable_node *node);
bool uksm_vma_has_anon_vma(struct vm_area_struct *vma);
bool uksm_vma_not_copied_on_fork(struct vm_area_struct *vma);
void uksm_mmgrab(struct mm_struct *mm);
void uksm_mmdrop(struct mm_struct *mm);
bool uksm_mm_has_users(struct mm_struct *mm);

#endif /* UKSM_GLUE_H */
