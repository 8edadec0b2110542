/* hgs3_conftab.h: the machinery of a directive table, free of httpd.
 *
 * A row describes one directive: how its value is parsed (the parse
 * function is its kind), the fields of a configuration struct it sets
 * (by offset), their limits and defaults, and the group it merges with.
 * The glue (mod_hgs3cache_config.c) keeps its rows in its command table
 * and loops over them to create, fill with defaults and merge. */
#ifndef HGS3_CONFTAB_H
#define HGS3_CONFTAB_H

#include <stddef.h>

#include <apr_pools.h>

#include "hgs3_confval.h"

#define HGS3_CONF_UNSET  (-1) /* an int or apr_off_t field not given */
#define HGS3_CONF_FIELDS 3    /* fields one directive may set */

typedef enum { HGS3_F_NONE = 0, HGS3_F_INT, HGS3_F_OFF, HGS3_F_PTR } hgs3_ftype_e;

typedef struct {
    apr_size_t off;
    hgs3_ftype_e type;
} hgs3_field;

/* HGS3_FIELD(struct type, member): the field's offset and type. */
#define HGS3_FTYPE(x) _Generic((x), int : HGS3_F_INT, apr_off_t : HGS3_F_OFF, default : HGS3_F_PTR)
#define HGS3_FIELD(T, fld)                                                                         \
    {                                                                                              \
        offsetof(T, fld), HGS3_FTYPE(((T *)0)->fld)                                                \
    }
#define HGS3_FIELD_AT(c, f, T) (*(T *)((char *)(c) + (f).off))

/* What a parser gets besides the row: a pool, the directive's name for its
 * messages, and the caller's own context (httpd's cmd_parms). */
typedef struct {
    apr_pool_t *p;
    const char *name;
    void *host;
} hgs3_conf_ctx;

typedef struct hgs3_conf_row hgs3_conf_row;

/* Sets the row's fields in conf from argc values, or returns a message
 * that starts with the directive's name. */
typedef const char *hgs3_conf_parse_fn(const hgs3_conf_ctx *ctx, const hgs3_conf_row *row,
                                       void *conf, int argc, const char *const *argv);

struct hgs3_conf_row {
    hgs3_conf_parse_fn *parse;         /* the kind */
    hgs3_field f[HGS3_CONF_FIELDS];    /* the fields it sets; f[0] set: "given" */
    int group;                         /* rows of one group merge as one unit (0: alone) */
    apr_int64_t min, max;              /* limits of a number or size */
    apr_int64_t def[HGS3_CONF_FIELDS]; /* defaults of numeric fields */
    const char *sdef;                  /* default of f[0] when a string or list */
    const char *what;                  /* unit, the enum's names "a|b", a file that must exist */
    hgs3_confval_check_fn *check;      /* the rule of a string, list word or path */
};

/* Sets every field of row in conf to its default, or to unset. */
void hgs3_conf_init(void *conf, const hgs3_conf_row *row, int defaults);
/* Whether f[0] was given in conf. */
int hgs3_conf_given(const void *conf, const hgs3_conf_row *row);
/* Copies every field of row. */
void hgs3_conf_copy(void *to, const void *from, const hgs3_conf_row *row);

/* The kinds that need nothing but their value. */
hgs3_conf_parse_fn hgs3_conf_parse_int;    /* whole numbers of `what`, into f[0], f[1], ... */
hgs3_conf_parse_fn hgs3_conf_parse_pair;   /* exactly two of them */
hgs3_conf_parse_fn hgs3_conf_parse_size;   /* bytes with a K/M/G/T suffix */
hgs3_conf_parse_fn hgs3_conf_parse_enum;   /* one of what's "a|b|c": f[0] gets its index */
hgs3_conf_parse_fn hgs3_conf_parse_string; /* checked by row->check (none: anything) */
hgs3_conf_parse_fn hgs3_conf_parse_list;   /* words checked by row->check, an array */

#endif
