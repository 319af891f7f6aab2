/* Field-level error causes; see causes.h. */
#include "apiserver/causes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tn_causes_init(struct tn_causes *c)
{
    c->v = NULL;
    c->n = c->cap = 0;
}

void tn_causes_free(struct tn_causes *c)
{
    free(c->v);
    tn_causes_init(c);
}

void tn_causes_add(struct tn_causes *c, const char *reason, const char *field, const char *fmt, ...)
{
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 4;
        struct tn_cause *nv = realloc(c->v, ncap * sizeof(*nv));
        if (!nv) return;
        c->v = nv;
        c->cap = ncap;
    }
    struct tn_cause *x = &c->v[c->n++];
    snprintf(x->reason, sizeof(x->reason), "%s", reason);
    snprintf(x->field, sizeof(x->field), "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->message, sizeof(x->message), fmt, ap);
    va_end(ap);
}
