#include "CKernels.h"
#include "row_blocks.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define TC_PAUSE() _mm_pause()
#else
#define TC_PAUSE() ((void)0)
#endif

// A fixed set of worker threads that spin between jobs (for a while) instead of sleeping. Decoding issues ~85
// matrix-vector products per token, ~20-60 µs each: waking a sleeping thread for every one (what a condition variable
// or libdispatch does) costs about as much as the product. Workers spin for up to TC_SPIN_NS after their last job,
// then sleep on a condition variable, so an idle process does not burn a core.

#define TC_MAX_WORKERS 63
#define TC_SPIN_NS 2000000L  // 2 ms

typedef struct {
    void (*fn)(void *ctx, int part);
    void *ctx;
    int parts;
} tc_job;

static pthread_mutex_t pool_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_wake = PTHREAD_COND_INITIALIZER;
static int pool_workers = 0;            // started worker threads
// A job's fields live in the slot of its generation's parity, and parts are claimed through one ticket that holds
// the generation (high 32 bits) and the next part (low 32 bits). A worker that is late (it saw an older generation,
// or is leaving its last job while the next one is being set up) can therefore never claim a part of a job it did
// not read, nor read a job whose fields are being written: its compare-and-swap fails as soon as the generation
// moved on, and a slot is rewritten only two generations later, after every part of the job between has finished.
static tc_job pool_jobs[2];
static atomic_ulong pool_generation = 0;   // incremented for each job
static _Atomic unsigned long long pool_ticket = 0; // (generation << 32) | next part
static atomic_int pool_done_parts = 0;     // parts finished
static atomic_int pool_sleepers = 0;     // workers waiting on pool_wake
static pthread_mutex_t pool_run_mutex = PTHREAD_MUTEX_INITIALIZER; // one job at a time

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/// Runs parts of generation `generation`'s job until none is left, or the pool has moved on to another job.
static void run_parts(unsigned long generation) {
    const unsigned long long tag = (unsigned long long)(generation & 0xffffffffUL) << 32;
    const tc_job *job = &pool_jobs[generation & 1];
    for (;;) {
        unsigned long long ticket = atomic_load_explicit(&pool_ticket, memory_order_acquire);
        if ((ticket & 0xffffffff00000000ULL) != tag) return;
        int part = (int)(ticket & 0xffffffffULL);
        // If the job was superseded, this read may see another job's fields, but the exchange below then fails.
        if (part >= job->parts) return;
        if (!atomic_compare_exchange_weak_explicit(&pool_ticket, &ticket, ticket + 1, memory_order_acq_rel, memory_order_acquire)) continue;
        job->fn(job->ctx, part);
        atomic_fetch_add_explicit(&pool_done_parts, 1, memory_order_acq_rel);
    }
}

static void *worker_main(void *unused) {
    (void)unused;
    unsigned long seen = atomic_load_explicit(&pool_generation, memory_order_acquire);
    for (;;) {
        long spin_start = now_ns();
        unsigned long generation;
        int spins = 0;
        while ((generation = atomic_load_explicit(&pool_generation, memory_order_acquire)) == seen) {
            TC_PAUSE();
            if (++spins == 1024) {
                spins = 0;
                if (now_ns() - spin_start > TC_SPIN_NS) {
                    pthread_mutex_lock(&pool_mutex);
                    atomic_fetch_add(&pool_sleepers, 1);
                    while (atomic_load_explicit(&pool_generation, memory_order_acquire) == seen) {
                        pthread_cond_wait(&pool_wake, &pool_mutex);
                    }
                    atomic_fetch_sub(&pool_sleepers, 1);
                    pthread_mutex_unlock(&pool_mutex);
                    spin_start = now_ns();
                }
            }
        }
        seen = generation;
        run_parts(generation);
    }
    return NULL;
}

void tc_parallel_for(int parts, int threads, void (*fn)(void *ctx, int part), void *ctx) {
    if (parts <= 1 || threads <= 1) {
        for (int part = 0; part < parts; part++) fn(ctx, part);
        return;
    }
    pthread_mutex_lock(&pool_run_mutex);
    int wanted = threads - 1;
    if (wanted > TC_MAX_WORKERS) wanted = TC_MAX_WORKERS;
    while (pool_workers < wanted) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&thread, &attributes, worker_main, NULL) != 0) {
            pthread_attr_destroy(&attributes);
            break;
        }
        pthread_attr_destroy(&attributes);
        pool_workers++;
    }
    // Only this thread (holding pool_run_mutex) advances the generation.
    unsigned long generation = atomic_load_explicit(&pool_generation, memory_order_acquire) + 1;
    tc_job *job = &pool_jobs[generation & 1];
    job->fn = fn;
    job->ctx = ctx;
    job->parts = parts;
    atomic_store_explicit(&pool_done_parts, 0, memory_order_relaxed);
    // Release: whoever claims a part through the new ticket sees the job's fields.
    atomic_store_explicit(&pool_ticket, (unsigned long long)(generation & 0xffffffffUL) << 32, memory_order_release);
    // Publish the job; sleeping workers need the mutex-protected broadcast, spinning ones see the new generation.
    pthread_mutex_lock(&pool_mutex);
    atomic_store_explicit(&pool_generation, generation, memory_order_release);
    if (atomic_load(&pool_sleepers) > 0) pthread_cond_broadcast(&pool_wake);
    pthread_mutex_unlock(&pool_mutex);
    run_parts(generation);
    while (atomic_load_explicit(&pool_done_parts, memory_order_acquire) < parts) TC_PAUSE();
    pthread_mutex_unlock(&pool_run_mutex);
}

typedef struct {
    const void *w;
    size_t rows, cols, ldw, block;
    const float *x;
    float alpha, beta;
    float *y;
} gemv_job;

static void gemv_f32_part(void *ctx, int part) {
    gemv_job *job = ctx;
    size_t start = (size_t)part * job->block;
    if (start >= job->rows) return;
    size_t count = job->rows - start < job->block ? job->rows - start : job->block;
    tc_gemv_f32((const float *)job->w + start * job->ldw, count, job->cols, job->ldw, job->x, job->alpha, job->beta, job->y + start);
}

static void gemv_bf16_part(void *ctx, int part) {
    gemv_job *job = ctx;
    size_t start = (size_t)part * job->block;
    if (start >= job->rows) return;
    size_t count = job->rows - start < job->block ? job->rows - start : job->block;
    tc_gemv_bf16((const uint16_t *)job->w + start * job->ldw, count, job->cols, job->ldw, job->x, job->alpha, job->beta, job->y + start);
}

static void gemv_f16_part(void *ctx, int part) {
    gemv_job *job = ctx;
    size_t start = (size_t)part * job->block;
    if (start >= job->rows) return;
    size_t count = job->rows - start < job->block ? job->rows - start : job->block;
    tc_gemv_f16((const uint16_t *)job->w + start * job->ldw, count, job->cols, job->ldw, job->x, job->alpha, job->beta, job->y + start);
}

// Row blocks for `threads` threads. One block per thread leaves a thread that starts late (its core busy with another
// process, or it was asleep) holding the last half of the matrix while the other waits; with several blocks per
// thread the late one takes fewer (parts are claimed in order, whoever is free first). Blocks keep at least ~256k
// weights, so claiming one (an atomic on a shared line, ~0.1 µs) stays small beside the ~40 µs of reading 1 MB, and at
// most 8 per thread: on 2 threads stories15M's (32000, 288) output projection gets 16 blocks, its 288×288 and 768×288
// layers one per thread.
static int gemv_parts(size_t rows, size_t cols, int threads) {
    if (threads <= 1) return threads;
    size_t per_thread = rows * cols / ((size_t)threads << 18);
    if (per_thread < 1) per_thread = 1;
    if (per_thread > 8) per_thread = 8;
    return threads * (int)per_thread;
}

void tc_gemv_f32_parallel(const float *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta, float *y,
                          int parts) {
    int blocks = gemv_parts(rows, cols, parts);
    gemv_job job = {w, rows, cols, ldw, tc_row_block(rows, blocks), x, alpha, beta, y};
    tc_parallel_for(blocks, parts, gemv_f32_part, &job);
}

void tc_gemv_bf16_parallel(const uint16_t *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta, float *y,
                           int parts) {
    int blocks = gemv_parts(rows, cols, parts);
    gemv_job job = {w, rows, cols, ldw, tc_row_block(rows, blocks), x, alpha, beta, y};
    tc_parallel_for(blocks, parts, gemv_bf16_part, &job);
}

void tc_gemv_f16_parallel(const uint16_t *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta, float *y,
                          int parts) {
    int blocks = gemv_parts(rows, cols, parts);
    gemv_job job = {w, rows, cols, ldw, tc_row_block(rows, blocks), x, alpha, beta, y};
    tc_parallel_for(blocks, parts, gemv_f16_part, &job);
}
