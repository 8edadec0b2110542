/* mock_s3.h: a scripted HTTP server on loopback for the unit tests.
 *
 * Answers each request with the next scripted response, on one kept-alive
 * connection at a time, and records "METHOD target" of every request. It
 * lets the tests pin the status mapping, retries, callbacks and connection
 * reuse exactly, which real stores cannot be made to do on demand. */
#ifndef MOCK_S3_H
#define MOCK_S3_H

#include <apr_pools.h>
#include <apr_network_io.h>
#include <apr_thread_proc.h>

typedef struct scripted {
    int status;
    const char *headers; /* extra header lines, each ending in \r\n */
    const char *body;
} scripted;

typedef struct mock {
    apr_pool_t *pool;
    apr_socket_t *listener;
    apr_thread_t *thread;
    int port;
    const scripted *script;
    int nscript, next;
    char requests[32][256];
    int nrequests;
    volatile int stop;
} mock;

/* Start answering with script[0..n) (then 500 Unscripted), in pool. */
mock *mock_start(apr_pool_t *pool, const scripted *script, int n);

/* The client must be gone (its connection closed) before this. */
void mock_stop(mock *m);

#endif
