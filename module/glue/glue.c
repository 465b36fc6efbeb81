// SPDX-License-Identifier: GPL-2.0
/*
 * C glue of uksm.ko: what the Rust crate cannot reach through the `kernel` crate of
 * every supported version (6.12 and 7.3). The few differences between the kernels are
 * here, each behind a test of the feature it depends on.
 *
 *  - the ksm_hooks registration table (include/linux/ksm_hooks.h is not in the bindings);
 *  - module parameters, the /sys/kernel/mm/uksm/ attributes and uksm's files in
 *    /sys/kernel/mm/ksm/ (6.12 has no Rust abstraction for either, 7.3 none for sysfs
 *    attributes): all forward to the tables in Rust, which validate and store values;
 *  - one-line wrappers of static inline functions and macros (mmap locks, wait_event,
 *    kthread_run, vm_area_struct fields, the process list walk).
 *
 * No policy lives here. Functions named uksm_rs_* are implemented in Rust.
 */
#include <linux/cred.h>
#include <linux/delay.h>
#include <linux/freezer.h>
#include <linux/highmem.h>
#include <linux/ksm_hooks.h>
#include <linux/ksm.h>
#include <linux/kthread.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/random.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/swap.h>
#include <linux/sysfs.h>
#include <linux/user_namespace.h>
#include <linux/userfaultfd_k.h>
#include <linux/wait.h>

#include "glue.h"

/* Implemented in Rust (module/hooks.rs, module/tunables.rs, module/scanner.rs). */
void uksm_rs_vma_linked(struct vm_area_struct *vma);
void uksm_rs_vma_free(struct vm_area_struct *vma);
int uksm_rs_param_set(const char *name, const char *val);
int uksm_rs_param_show(const char *name, char *buf, size_t len);
size_t uksm_rs_attr_count(u32 table);
const char *uksm_rs_attr_name(u32 table, size_t idx);
bool uksm_rs_attr_writable(u32 table, size_t idx);
int uksm_rs_attr_show(u32 table, size_t idx, char *buf, size_t len);
int uksm_rs_attr_set(u32 table, size_t idx, const char *buf, size_t len);
int uksm_rs_thread_main(void *data);

/* Hooks */

static const struct ksm_hook_ops uksm_hook_ops = {
	.owner = THIS_MODULE,
	.vma_linked = uksm_rs_vma_linked,
	.vma_free = uksm_rs_vma_free,
};

int uksm_hooks_register(void)
{
	return ksm_hooks_register(&uksm_hook_ops);
}

void uksm_hooks_unregister(void)
{
	ksm_hooks_unregister(&uksm_hook_ops);
}

/* Module parameters: values live in Rust; read-only at runtime (use sysfs). */

static int uksm_param_set(const char *val, const struct kernel_param *kp)
{
	if (!val)
		return -EINVAL;
	return uksm_rs_param_set(kp->name, val);
}

/* buf is a page (param_attr_show). */
static int uksm_param_get(char *buf, const struct kernel_param *kp)
{
	return uksm_rs_param_show(kp->name, buf, PAGE_SIZE);
}

static const struct kernel_param_ops uksm_param_ops = {
	.set = uksm_param_set,
	.get = uksm_param_get,
};

module_param_cb(run, &uksm_param_ops, NULL, 0444);
MODULE_PARM_DESC(run, "1: scan and merge from load on (default), 0: load idle; change later in /sys/kernel/mm/uksm/run (2: unmerge all)");
module_param_cb(sleep_millisecs, &uksm_param_ops, NULL, 0444);
MODULE_PARM_DESC(sleep_millisecs, "milliseconds uksmd sleeps between scan rounds, 0..3600000 (default 100)");
module_param_cb(stats_interval_secs, &uksm_param_ops, NULL, 0444);
MODULE_PARM_DESC(stats_interval_secs, "seconds between statistics lines in the kernel log, 0 = none, up to 86400 (default 60)");
module_param_cb(pages_to_scan, &uksm_param_ops, NULL, 0444);
MODULE_PARM_DESC(pages_to_scan, "most pages uksmd samples per round, all rungs together, 1..1000000 (default 20000; the CPU shares normally bind first)");
module_param_cb(use_zero_pages, &uksm_param_ops, NULL, 0444);
MODULE_PARM_DESC(use_zero_pages, "1: merge all-zero pages into the KSM zero page (default), 0: leave them");
module_param_cb(max_page_sharing, &uksm_param_ops, NULL, 0444);
MODULE_PARM_DESC(max_page_sharing, "most mappings merged into one page, 2..1000000 (default 256); further copies get another merged page");
module_param_cb(cpu_governor, &uksm_param_ops, NULL, 0444);
MODULE_PARM_DESC(cpu_governor, "CPU governor preset: full (default), medium, low or quiet; sets max_cpu_percentage (give that after it to change it)");
module_param_cb(max_cpu_percentage, &uksm_param_ops, NULL, 0444);
MODULE_PARM_DESC(max_cpu_percentage, "ceiling of uksmd's CPU use in percent of one CPU, 1..100 (default: the governor's, 95 for full)");
module_param_cb(cpu_ratios, &uksm_param_ops, NULL, 0444);
MODULE_PARM_DESC(cpu_ratios, "CPU share of each of the 4 rungs, in 1/10000 of a CPU or MAX/n (n-th of max_cpu_percentage), e.g. \"20 40 MAX/4 MAX/1\" (default: the governor's)");
module_param_cb(eval_intervals, &uksm_param_ops, NULL, 0444);
MODULE_PARM_DESC(eval_intervals, "ms in which each of the 4 rungs covers its memory, non-increasing, 10..600000, e.g. \"1000 500 200 50\" (default: the governor's)");
module_param_cb(abundant_threshold, &uksm_param_ops, NULL, 0444);
MODULE_PARM_DESC(abundant_threshold, "percent of a VMA's samples that must find new merges for it to climb the ladder, 0..99 (default 10)");
module_param_cb(thrash_threshold, &uksm_param_ops, NULL, 0444);
MODULE_PARM_DESC(thrash_threshold, "percent of a VMA's merges broken by writes above which it counts as thrashing, 0 = off, 0..99 (default 50)");
module_param_cb(merge_domain, &uksm_param_ops, NULL, 0444);
MODULE_PARM_DESC(merge_domain, "which pages may be merged with each other: uid (default: of processes with the same effective user ID), cgroup (in the same memory cgroup) or global (any); zero pages under every policy");

/* The governor's settings (module/settings.rs): written by parameters and sysfs. */
static DEFINE_MUTEX(uksm_settings_mutex);

void uksm_settings_lock(void)
{
	mutex_lock(&uksm_settings_mutex);
}

void uksm_settings_unlock(void)
{
	mutex_unlock(&uksm_settings_mutex);
}

/*
 * Attribute files, one per entry of a Rust attribute table: table UKSM_ATTRS is
 * /sys/kernel/mm/uksm/, table UKSM_KSM_VIEW the files uksm answers for in
 * /sys/kernel/mm/ksm/ while it is loaded (ksm_hooks_set_view()).
 */

struct uksm_attr {
	struct kobj_attribute ka;
	u32 table;
	size_t idx;
};

struct uksm_attr_table {
	struct uksm_attr *attrs;
	struct attribute **list;	/* NULL-terminated, for an attribute group */
};

static struct uksm_attr_table uksm_tables[UKSM_ATTR_TABLES];
static struct kobject *uksm_kobj;
static struct attribute_group uksm_attr_group;

/* buf is a page (sysfs_emit's contract). */
static ssize_t uksm_attr_show(struct kobject *kobj, struct kobj_attribute *ka, char *buf)
{
	struct uksm_attr *a = container_of(ka, struct uksm_attr, ka);

	return uksm_rs_attr_show(a->table, a->idx, buf, PAGE_SIZE);
}

static ssize_t uksm_attr_store(struct kobject *kobj, struct kobj_attribute *ka,
			       const char *buf, size_t count)
{
	struct uksm_attr *a = container_of(ka, struct uksm_attr, ka);
	int err = uksm_rs_attr_set(a->table, a->idx, buf, count);

	return err ? err : count;
}

static void uksm_attr_table_free(u32 table)
{
	struct uksm_attr_table *t = &uksm_tables[table];

	kfree(t->list);
	kfree(t->attrs);
	t->list = NULL;
	t->attrs = NULL;
}

/* Statistics are world-readable, tunables writable by root only. */
static struct attribute **uksm_attr_table_build(u32 table)
{
	struct uksm_attr_table *t = &uksm_tables[table];
	size_t i, n = uksm_rs_attr_count(table);

	t->attrs = kcalloc(n, sizeof(*t->attrs), GFP_KERNEL);
	t->list = kcalloc(n + 1, sizeof(*t->list), GFP_KERNEL);
	if (!t->attrs || !t->list) {
		uksm_attr_table_free(table);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		struct uksm_attr *a = &t->attrs[i];

		sysfs_attr_init(&a->ka.attr);
		a->table = table;
		a->idx = i;
		a->ka.attr.name = uksm_rs_attr_name(table, i);
		a->ka.show = uksm_attr_show;
		if (uksm_rs_attr_writable(table, i)) {
			a->ka.attr.mode = 0644;
			a->ka.store = uksm_attr_store;
		} else {
			a->ka.attr.mode = 0444;
		}
		t->list[i] = &a->ka.attr;
	}
	return t->list;
}

int uksm_sysfs_create(void)
{
	int err;

	uksm_attr_group.attrs = uksm_attr_table_build(UKSM_ATTRS);
	if (!uksm_attr_group.attrs)
		return -ENOMEM;
	uksm_kobj = kobject_create_and_add("uksm", mm_kobj);
	if (!uksm_kobj) {
		uksm_attr_table_free(UKSM_ATTRS);
		return -ENOMEM;
	}
	err = sysfs_create_group(uksm_kobj, &uksm_attr_group);
	if (err) {
		kobject_put(uksm_kobj);
		uksm_kobj = NULL;
		uksm_attr_table_free(UKSM_ATTRS);
	}
	return err;
}

void uksm_sysfs_remove(void)
{
	/* Removing the group waits for running show/store calls to finish. */
	sysfs_remove_group(uksm_kobj, &uksm_attr_group);
	kobject_put(uksm_kobj);
	uksm_kobj = NULL;
	uksm_attr_table_free(UKSM_ATTRS);
}

int uksm_ksm_view_create(void)
{
	struct attribute **list = uksm_attr_table_build(UKSM_KSM_VIEW);
	int err;

	if (!list)
		return -ENOMEM;
	err = ksm_hooks_set_view(&uksm_hook_ops, list);
	if (err)
		uksm_attr_table_free(UKSM_KSM_VIEW);
	return err;
}

void uksm_ksm_view_remove(void)
{
	/* Restores KSM's files; waits for running show/store calls of uksm's to finish. */
	ksm_hooks_set_view(&uksm_hook_ops, NULL);
	uksm_attr_table_free(UKSM_KSM_VIEW);
}

/* KSM's structures for `nodes` merged pages mapped at `items` places, in bytes. */
unsigned long uksm_ksm_meta_bytes(unsigned long nodes, unsigned long items)
{
	return ksm_hooks_meta_bytes(nodes, items);
}

/* The uksmd thread. */

static DECLARE_WAIT_QUEUE_HEAD(uksm_thread_wait_queue);
static bool uksm_thread_kicked;

static int uksm_thread_fn(void *data)
{
	set_freezable();
	set_user_nice(current, 5);
	return uksm_rs_thread_main(data);
}

struct task_struct *uksm_thread_start(void)
{
	return kthread_run(uksm_thread_fn, NULL, "uksmd");
}

bool uksm_is_err(const void *ptr)
{
	return IS_ERR(ptr);
}

long uksm_ptr_err(const void *ptr)
{
	return PTR_ERR(ptr);
}

int uksm_thread_stop(struct task_struct *task)
{
	return kthread_stop(task);
}

bool uksm_thread_should_stop(void)
{
	return kthread_should_stop();
}

void uksm_thread_kick(void)
{
	WRITE_ONCE(uksm_thread_kicked, true);
	wake_up_interruptible(&uksm_thread_wait_queue);
}

#define UKSM_THREAD_WOKEN (kthread_should_stop() || READ_ONCE(uksm_thread_kicked))

void uksm_thread_wait(long timeout_ms)
{
	if (timeout_ms < 0)
		wait_event_freezable(uksm_thread_wait_queue, UKSM_THREAD_WOKEN);
	else
		wait_event_freezable_timeout(uksm_thread_wait_queue, UKSM_THREAD_WOKEN,
					     msecs_to_jiffies(timeout_ms));
	WRITE_ONCE(uksm_thread_kicked, false);
}

void uksm_cond_resched(void)
{
	cond_resched();
}

void uksm_msleep(unsigned int ms)
{
	msleep(ms);
}

/* Processes and VMAs */

size_t uksm_collect_mms(struct mm_struct **mms, size_t cap)
{
	struct task_struct *g, *t;
	size_t n = 0;

	rcu_read_lock();
	for_each_process_thread(g, t) {
		struct mm_struct *mm;

		if (n == cap) {
			n++;
			break;
		}
		mm = get_task_mm(t);
		if (mm)
			mms[n++] = mm;
	}
	rcu_read_unlock();
	return n;
}

void uksm_mmput(struct mm_struct *mm)
{
	mmput(mm);
}

struct vm_area_struct *uksm_find_vma(struct mm_struct *mm, unsigned long addr)
{
	return find_vma(mm, addr);
}

bool uksm_mmget_not_zero(struct mm_struct *mm)
{
	return mmget_not_zero(mm);
}

bool uksm_mmap_read_trylock(struct mm_struct *mm)
{
	return mmap_read_trylock(mm);
}

struct vm_area_struct *uksm_vma_lookup(struct mm_struct *mm, unsigned long addr)
{
	return vma_lookup(mm, addr);
}

void uksm_mmap_read_lock(struct mm_struct *mm)
{
	mmap_read_lock(mm);
}

void uksm_mmap_read_unlock(struct mm_struct *mm)
{
	mmap_read_unlock(mm);
}

struct mm_struct *uksm_vma_mm(const struct vm_area_struct *vma)
{
	return vma->vm_mm;
}

unsigned long uksm_vma_flags(const struct vm_area_struct *vma)
{
	return READ_ONCE(vma->vm_flags);
}

bool uksm_vma_is_anonymous(const struct vm_area_struct *vma)
{
	return !READ_ONCE(vma->vm_ops);	/* vma_is_anonymous() */
}

bool uksm_vma_uffd_armed(struct vm_area_struct *vma)
{
	return userfaultfd_armed(vma);
}

/*
 * Whether the owner opted out of merging: MADV_UNMERGEABLE on the range, or
 * prctl(PR_SET_MEMORY_MERGE, 0) after enabling it (see ksm_hooks.h), unless the range was
 * madvised MERGEABLE since (that prctl clears VM_MERGEABLE everywhere, so the flag is
 * set again only by MADV_MERGEABLE, which built-in KSM would honour). The mmap lock of
 * vma->vm_mm must be held.
 */
bool uksm_vma_opted_out(struct vm_area_struct *vma)
{
	struct mm_struct *mm = vma->vm_mm;
	unsigned long flags = READ_ONCE(vma->vm_flags);

	if (flags & VM_UNMERGEABLE)
		return true;
	if (flags & VM_MERGEABLE)
		return false;
#ifdef NUM_MM_FLAG_BITS		/* mm flags became a bitmap (Linux 6.18) */
	return mm_flags_test(MMF_VM_MERGE_NONE, mm);
#else
	return test_bit(MMF_VM_MERGE_NONE, &mm->flags);
#endif
}

unsigned long uksm_vma_start(const struct vm_area_struct *vma)
{
	return READ_ONCE(vma->vm_start);
}

unsigned long uksm_vma_end(const struct vm_area_struct *vma)
{
	return READ_ONCE(vma->vm_end);
}

void *uksm_vma_private(const struct vm_area_struct *vma)
{
	return READ_ONCE(vma->ksm_private);
}

void uksm_vma_set_private(struct vm_area_struct *vma, void *slot)
{
	WRITE_ONCE(vma->ksm_private, slot);
}

/* The vm_flags that exclude a VMA from merging (see docs/vma-registry.md). */
unsigned long uksm_vm_flags_unmergeable(void)
{
	return VM_SHARED | VM_MAYSHARE | VM_PFNMAP | VM_IO | VM_DONTEXPAND |
	       VM_HUGETLB | VM_MIXEDMAP | VM_DROPPABLE | VM_GROWSDOWN | VM_GROWSUP;
}

/* Pages */

/*
 * The first address from start up to end in vma mapping a present anonymous page or a KSM
 * zero page (ksm_hooks_next_page(): empty page-table ranges cost nothing), or end. The page
 * comes referenced in *pagep; NULL for a KSM zero page. The mmap lock must be held.
 */
unsigned long uksm_next_page(struct vm_area_struct *vma, unsigned long start,
			     unsigned long end, struct page **pagep)
{
	return ksm_hooks_next_page(vma, start, end, pagep);
}

const void *uksm_kmap_page(struct page *page)
{
	return kmap_local_page(page);
}

void uksm_kunmap(const void *addr)
{
	kunmap_local(addr);
}

void uksm_put_page(struct page *page)
{
	put_page(page);
}

void uksm_lru_add_drain_all(void)
{
	lru_add_drain_all();
}

long uksm_ksm_zero_pages(void)
{
	return atomic_long_read(&ksm_zero_pages);
}

long uksm_mm_ksm_zero_pages(struct mm_struct *mm)
{
	return mm_ksm_zero_pages(mm);
}

/* Milliseconds of CLOCK_MONOTONIC. */
s64 uksm_now_ms(void)
{
	return ktime_to_ms(ktime_get());
}

/* Nanoseconds of CLOCK_MONOTONIC. */
/*
 * Merge domains (module/logic/src/domain.rs): policy 0 is global, 1 uid, 2 cgroup. A
 * process's owner is mm->owner, which exists with CONFIG_MEMCG only.
 */
bool uksm_domain_supported(u32 policy)
{
	switch (policy) {
	case 0:
		return true;
	case 1:
		return IS_ENABLED(CONFIG_MEMCG);
	case 2:
		return IS_ENABLED(CONFIG_MEMCG) && !mem_cgroup_disabled();
	}
	return false;
}

/*
 * The domain of mm's pages: 0 under global; under uid, the effective user ID of mm's
 * owner now (the thread group leader, or the task that inherited the mm when it exited);
 * under cgroup, the id of its memory cgroup. U64_MAX when that cannot be told. mm must be
 * kept alive by the caller (mmgrab at least).
 */
u64 uksm_mm_domain(struct mm_struct *mm, u32 policy)
{
	u64 domain = U64_MAX;
#ifdef CONFIG_MEMCG
	struct task_struct *owner;
	struct mem_cgroup *memcg;

	switch (policy) {
	case 0:
		return 0;
	case 1:
		rcu_read_lock();
		owner = rcu_dereference(mm->owner);
		if (owner)
			domain = from_kuid(&init_user_ns, task_cred_xxx(owner, euid));
		rcu_read_unlock();
		break;
	case 2:
		memcg = get_mem_cgroup_from_mm(mm);
		if (memcg) {
			domain = cgroup_id(memcg->css.cgroup);
			css_put(&memcg->css);
		}
		break;
	}
#else
	if (policy == 0)
		domain = 0;
#endif
	return domain;
}

u64 uksm_now_ns(void)
{
	return ktime_get_ns();
}

/*
 * CPU time of the calling thread in ns: its scheduler clock, which lags by up to a tick
 * while the thread runs (exact over longer spans).
 */
u64 uksm_thread_cpu_ns(void)
{
	return READ_ONCE(current->se.sum_exec_runtime);
}

u64 uksm_random_u64(void)
{
	return get_random_u64();
}

bool uksm_signal_pending(void)
{
	return signal_pending(current);
}

/* Merged pages (module/stable.rs) */

/* Compares two referenced pages; the owners may write them meanwhile, so this is a hint. */
bool uksm_pages_identical(struct page *a, struct page *b)
{
	const void *pa = kmap_local_page(a);
	const void *pb = kmap_local_page(b);
	bool same = !memcmp(pa, pb, PAGE_SIZE);

	kunmap_local(pb);
	kunmap_local(pa);
	return same;
}

/*
 * Whether a small page, referenced once by the caller, has references beyond its mappings
 * and the swap cache (a GUP pin, a pipe holding it): the merge step would refuse it
 * (write_protect_page() makes the same count, exactly, with the page locked and its PTE
 * cleared). Unlocked, so a hint; large folios are split by the merge step first.
 */
bool uksm_page_held_elsewhere(struct page *page)
{
	struct folio *folio = page_folio(page);
	int expected = folio_mapcount(folio) + 1;

	if (folio_test_large(folio))
		return false;
	if (folio_test_swapcache(folio))
		expected += 1;
	return folio_ref_count(folio) > expected;
}

bool uksm_page_is_ksm(struct page *page)
{
	return folio_test_ksm(page_folio(page));
}

/*
 * The pages of a referenced page's folio (1 for a small one), and in *index the page's
 * place in it. A hint: nothing is locked, the folio may be split meanwhile.
 */
unsigned long uksm_page_folio_pages(struct page *page, unsigned long *index)
{
	struct folio *folio = page_folio(page);

	*index = folio_page_idx(folio, page);
	return folio_nr_pages(folio);
}

/*
 * Whether node's folio holds the same content as page (referenced): 1 or 0; -ESTALE when
 * the node turned out stale (it is freed now).
 */
int uksm_node_same(struct ksm_stable_node *node, struct page *page)
{
	struct folio *folio = ksm_hooks_node_folio(node, KSM_HOOKS_NOLOCK);
	int same;

	if (!folio)
		return -ESTALE;
	same = uksm_pages_identical(&folio->page, page);
	folio_put(folio);
	return same;
}

/* A reference on node's (order-0) folio, as a page; NULL when the node turned out stale (freed now). */
struct page *uksm_node_page(struct ksm_stable_node *node)
{
	struct folio *folio = ksm_hooks_node_folio(node, KSM_HOOKS_NOLOCK);

	return folio ? &folio->page : NULL;
}

/* How many processes map node's folio; -ESTALE when the node turned out stale (freed now). */
int uksm_node_mapcount(struct ksm_stable_node *node)
{
	struct folio *folio = ksm_hooks_node_folio(node, KSM_HOOKS_NOLOCK);
	int mapped;

	if (!folio)
		return -ESTALE;
	mapped = folio_mapcount(folio);
	folio_put(folio);
	return mapped;
}

bool uksm_vma_has_anon_vma(struct vm_area_struct *vma)
{
	return READ_ONCE(vma->anon_vma);
}

bool uksm_vma_not_copied_on_fork(struct vm_area_struct *vma)
{
	return READ_ONCE(vma->vm_flags) & (VM_DONTCOPY | VM_WIPEONFORK);
}

void uksm_mmgrab(struct mm_struct *mm)
{
	mmgrab(mm);
}

void uksm_mmdrop(struct mm_struct *mm)
{
	mmdrop(mm);
}

bool uksm_mm_has_users(struct mm_struct *mm)
{
	return atomic_read(&mm->mm_users) > 0;
}
