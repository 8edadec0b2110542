/* mock_s3.c: a scripted HTTP server on loopback (see mock_s3.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include <apr_strings.h>

#include "mock_s3.h"

static int read_request(apr_socket_t *s, mock *m, int *is_head)
{
    char buf[16384];
    apr_size_t have = 0, n;
    char *end = NULL, *cl;
    long body = 0;

    while (!end) {
        n = sizeof(buf) - 1 - have;
        if (n == 0 || apr_socket_recv(s, buf + have, &n) != APR_SUCCESS || n == 0) {
            return 0;
        }
        have += n;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (m->nrequests < 32) {
        char *sp2, *sp1 = strchr(buf, ' ');
        sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
        apr_cpystrn(m->requests[m->nrequests], buf,
                    sp2 ? (apr_size_t)(sp2 - buf) + 1 : sizeof(m->requests[0]));
        m->nrequests++;
    }
    *is_head = !strncmp(buf, "HEAD ", 5);
    for (cl = buf; (cl = strchr(cl, '\n')) != NULL; ++cl) {
        if (!strncasecmp(cl + 1, "Content-Length:", 15)) {
            body = atol(cl + 16);
        }
    }
    body -= (long)(have - (apr_size_t)(end + 4 - buf));
    while (body > 0) {
        n = sizeof(buf);
        if (apr_socket_recv(s, buf, &n) != APR_SUCCESS) {
            return 0;
        }
        body -= (long)n;
    }
    return 1;
}

static void *APR_THREAD_FUNC mock_main(apr_thread_t *t, void *data)
{
    mock *m = data;
    apr_pool_t *cp;
    apr_socket_t *s;
    int is_head;

    apr_pool_create(&cp, NULL);
    while (!m->stop && apr_socket_accept(&s, m->listener, cp) == APR_SUCCESS) {
        while (!m->stop && read_request(s, m, &is_head)) {
            scripted r = {500, "", "<Error><Code>Unscripted</Code></Error>"};
            char *head;
            apr_size_t n;
            if (m->next < m->nscript) {
                r = m->script[m->next++];
            }
            head = apr_psprintf(cp, "HTTP/1.1 %d X\r\nContent-Length: %lu\r\n%s\r\n", r.status,
                                (unsigned long)strlen(r.body), r.headers ? r.headers : "");
            n = strlen(head);
            apr_socket_send(s, head, &n);
            if (!is_head && *r.body) {
                n = strlen(r.body);
                apr_socket_send(s, r.body, &n);
            }
        }
        apr_socket_close(s);
        apr_pool_clear(cp);
    }
    apr_pool_destroy(cp);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

mock *mock_start(apr_pool_t *pool, const scripted *script, int n)
{
    mock *m = apr_pcalloc(pool, sizeof(*m));
    apr_sockaddr_t *sa;

    m->pool = pool;
    m->script = script;
    m->nscript = n;
    assert_int_equal(apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, 0, 0, pool), APR_SUCCESS);
    assert_int_equal(apr_socket_create(&m->listener, APR_INET, SOCK_STREAM, APR_PROTO_TCP, pool),
                     APR_SUCCESS);
    assert_int_equal(apr_socket_bind(m->listener, sa), APR_SUCCESS);
    assert_int_equal(apr_socket_listen(m->listener, 8), APR_SUCCESS);
    assert_int_equal(apr_socket_addr_get(&sa, APR_LOCAL, m->listener), APR_SUCCESS);
    m->port = sa->port;
    assert_int_equal(apr_thread_create(&m->thread, NULL, mock_main, m, pool), APR_SUCCESS);
    return m;
}

/* The client must be gone (its connection closed) before this. */
void mock_stop(mock *m)
{
    apr_socket_t *s;
    apr_sockaddr_t *sa;
    apr_status_t trv;

    m->stop = 1;
    apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, (apr_port_t)m->port, 0, m->pool);
    apr_socket_create(&s, APR_INET, SOCK_STREAM, APR_PROTO_TCP, m->pool);
    apr_socket_connect(s, sa); /* wakes the accept */
    apr_socket_close(s);
    apr_thread_join(&trv, m->thread);
    apr_socket_close(m->listener);
}
