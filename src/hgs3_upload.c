/* hgs3_upload.c: bounded uploader over apr_thread_pool.
 *
 * apr_thread_pool queues without bound and, when destroyed, forgets tasks it
 * has not started. So we keep our own count and registry of waiting jobs:
 * the bound is enforced here, and at shutdown every job not yet started is
 * handed to its drop() callback, so its spool file is removed. */
#include <stdlib.h>
#include <apr_thread_pool.h>
#include <apr_thread_mutex.h>
#include <apr_ring.h>

#include "hgs3_upload.h"

typedef struct upload_task upload_task;
struct upload_task {
    APR_RING_ENTRY(upload_task) link;
    hgs3_uploader *u;
    hgs3_upload_run_fn *run;
    hgs3_upload_drop_fn *drop;
    void *job;
};

APR_RING_HEAD(task_ring, upload_task);

struct hgs3_uploader {
    apr_pool_t *pool;
    apr_thread_pool_t *tp;
    apr_thread_mutex_t *mx;
    struct task_ring waiting; /* submitted, not yet started */
    int queue_max;
    int shutdown;
    hgs3_upload_stats st;
};

static void *APR_THREAD_FUNC task_main(apr_thread_t *thd, void *data)
{
    upload_task *t = data;
    hgs3_uploader *u = t->u;
    int mine = 0;

    (void)thd;
    apr_thread_mutex_lock(u->mx);
    /* A task already taken off the ring was dropped by shutdown. */
    if (!u->shutdown && t->run) {
        APR_RING_REMOVE(t, link);
        u->st.queued--;
        u->st.running++;
        mine = 1;
    }
    apr_thread_mutex_unlock(u->mx);
    if (!mine) {
        return NULL;
    }
    t->run(t->job);
    apr_thread_mutex_lock(u->mx);
    u->st.running--;
    u->st.completed++;
    apr_thread_mutex_unlock(u->mx);
    free(t);
    return NULL;
}

static apr_status_t uploader_cleanup(void *data)
{
    hgs3_uploader_shutdown(data);
    return APR_SUCCESS;
}

apr_status_t hgs3_uploader_create(hgs3_uploader **pu, apr_pool_t *p, int workers, int queue_max)
{
    hgs3_uploader *u = apr_pcalloc(p, sizeof(*u));
    apr_status_t rv;

    *pu = NULL;
    u->pool = p;
    u->queue_max = queue_max > 0 ? queue_max : 1;
    APR_RING_INIT(&u->waiting, upload_task, link);
    rv = apr_thread_mutex_create(&u->mx, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    rv = apr_thread_pool_create(&u->tp, workers, workers, p);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    /* A pre-cleanup: it must run before the pool destroys the thread pool's
     * subpool, so queued jobs are dropped through their callbacks. */
    apr_pool_pre_cleanup_register(p, u, uploader_cleanup);
    *pu = u;
leave:
    return rv;
}

apr_status_t hgs3_uploader_submit(hgs3_uploader *u, hgs3_upload_run_fn *run,
                                  hgs3_upload_drop_fn *drop, void *job)
{
    upload_task *t;
    apr_status_t rv = APR_SUCCESS;

    apr_thread_mutex_lock(u->mx);
    if (u->shutdown) {
        rv = APR_EOF;
        goto leave;
    }
    if ((int)u->st.queued >= u->queue_max) {
        u->st.refused++;
        rv = APR_EAGAIN;
        goto leave;
    }
    /* malloc, not the pool: tasks come and go for the child's lifetime */
    t = calloc(1, sizeof(*t));
    if (!t) {
        rv = APR_ENOMEM;
        goto leave;
    }
    t->u = u;
    t->run = run;
    t->drop = drop;
    t->job = job;
    APR_RING_INSERT_TAIL(&u->waiting, t, upload_task, link);
    u->st.queued++;
    rv = apr_thread_pool_push(u->tp, task_main, t, APR_THREAD_TASK_PRIORITY_NORMAL, u);
    if (rv != APR_SUCCESS) {
        APR_RING_REMOVE(t, link);
        u->st.queued--;
        free(t);
        goto leave;
    }
    u->st.submitted++;
leave:
    apr_thread_mutex_unlock(u->mx);
    return rv;
}

void hgs3_uploader_shutdown(hgs3_uploader *u)
{
    struct task_ring dropped;
    upload_task *t;

    apr_thread_mutex_lock(u->mx);
    if (u->shutdown) {
        apr_thread_mutex_unlock(u->mx);
        return;
    }
    u->shutdown = 1;
    APR_RING_INIT(&dropped, upload_task, link);
    APR_RING_CONCAT(&dropped, &u->waiting, upload_task, link);
    u->st.queued = 0;
    /* Tasks in `dropped` may still be handed to a thread by the pool; the
     * thread sees shutdown and returns without touching them. Destroying
     * the thread pool waits for running jobs. */
    for (t = APR_RING_FIRST(&dropped); t != APR_RING_SENTINEL(&dropped, upload_task, link);
         t = APR_RING_NEXT(t, link)) {
        t->run = NULL;
    }
    apr_thread_mutex_unlock(u->mx);
    apr_thread_pool_tasks_cancel(u->tp, u);
    apr_thread_pool_destroy(u->tp);

    while (!APR_RING_EMPTY(&dropped, upload_task, link)) {
        t = APR_RING_FIRST(&dropped);
        APR_RING_REMOVE(t, link);
        t->drop(t->job);
        u->st.dropped++;
        free(t);
    }
}

void hgs3_uploader_stats(hgs3_uploader *u, hgs3_upload_stats *st)
{
    apr_thread_mutex_lock(u->mx);
    *st = u->st;
    apr_thread_mutex_unlock(u->mx);
}
