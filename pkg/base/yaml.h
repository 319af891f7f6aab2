/* YAML -> JSON with libyaml's event API. Multi-document streams, YAML 1.2 core-schema typing of
 * plain scalars (null/~/empty, true/false, ints incl. 0x/0o, floats incl. .inf/.nan; quoted and
 * tagged-!!str scalars stay strings; !!int/!!float/!!bool/!!null tags honoured), mapping keys as
 * strings, merge keys (<<), anchors/aliases expanded under a budget, and a depth limit, so a
 * hostile file cannot blow up memory or the stack. JSON -> YAML for printing.
 * Ownership: returned json_t are new references. Thread-safe (no shared state). */
#ifndef TN_BASE_YAML_H
#define TN_BASE_YAML_H

#include <jansson.h>
#include <stddef.h>

#include "base/err.h"

struct tn_yaml_limits {
    size_t max_depth;       /* nesting of collections; default 64 */
    size_t max_alias_nodes; /* total nodes copied through alias expansion; default 10000 */
    size_t max_nodes;       /* total nodes in the stream; default 1,000,000 */
};

/* Parses a YAML (or JSON) stream. Returns a new JSON array with one element per non-empty
 * document, or NULL with err set ("line L column C: problem"). lim may be NULL for defaults. */
json_t *tn_yaml_load_stream(const char *data, size_t len, const struct tn_yaml_limits *lim,
                            struct tn_err *err);
/* Exactly one document: returns it (new reference) or NULL with err set. An empty stream or a
 * stream of several documents is an error. */
json_t *tn_yaml_load_one(const char *data, size_t len, const struct tn_yaml_limits *lim,
                         struct tn_err *err);
/* Reads a file and parses it as a stream; err names the file on failure. */
json_t *tn_yaml_load_file(const char *path, const struct tn_yaml_limits *lim, struct tn_err *err);

/* Block-style YAML text of v (malloc'd, caller frees), strings quoted when plain scalars would
 * change type or meaning; NULL on OOM. */
char *tn_yaml_dump(const json_t *v);

#endif
