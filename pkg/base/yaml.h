/* YAML -> JSON with libyaml's event API. Multi-document streams, YAML 1.2 core-schema typing of
 * plain scalars (null/~/empty, true/false, ints incl. 0x/0o, floats incl. .inf/.nan; quoted and
 * tagged-!!str scalars stay strings; !!int/!!float/!!bool/!!null tags honoured), mapping keys as
 * strings, merge keys (<<), anchors/aliases expanded under a budget, and a depth limit, so a
 * hostile file cannot blow up memory or the stack. JSON -> YAML for printing.
 *
 * Typing details, since they differ from YAML 1.1 readers:
 *  - yes/no/on/off/y/n are strings (only true/True/TRUE/false/False/FALSE are booleans);
 *  - integers that overflow long long become reals; .inf/.nan (and numbers too large for a
 *    double) are errors, because JSON cannot hold them;
 *  - !!binary is kept as its base64 text; an unknown tag (!foo, !!timestamp) is ignored and
 *    the scalar typed as if untagged (quoted stays string); !!map/!!seq must match the node;
 *  - keys are strings: a null key becomes "null", any other scalar key its text ("0x10");
 *    a collection as key, a duplicate key in one mapping, a string containing NUL, an unknown
 *    alias are errors;
 *  - an empty document (e.g. after a trailing `---`) is skipped; `--- ~` is a null document;
 *  - aliases are deep copies (no shared subtrees in the result); merge keys take a mapping or a
 *    list of mappings, explicit keys win, earlier merged mappings win over later ones.
 * Error messages read "line L column C: problem (context)" with 1-based positions.
 * Ownership: returned json_t are new references. Thread-safe (no shared state). */
#ifndef TN_BASE_YAML_H
#define TN_BASE_YAML_H

#include <jansson.h>
#include <stddef.h>

#include "base/err.h"

/* A zero field means its default. Exceeding a limit fails with TN_ETOOBIG. */
struct tn_yaml_limits {
    size_t max_depth;       /* nesting of collections, aliases included; default 64 */
    size_t max_alias_nodes; /* total nodes copied through alias expansion; default 10000 */
    size_t max_nodes; /* total nodes in the stream, alias copies included; default 1,000,000 */
};

/* Parses a YAML (or JSON) stream. Returns a new JSON array with one element per non-empty
 * document, or NULL with err set ("line L column C: problem"). lim may be NULL for defaults. */
json_t *tn_yaml_load_stream(const char *data, size_t len, const struct tn_yaml_limits *lim,
                            struct tn_err *err);
/* Exactly one document: returns it (new reference) or NULL with err set. An empty stream or a
 * stream of several documents is an error. */
json_t *tn_yaml_load_one(const char *data, size_t len, const struct tn_yaml_limits *lim,
                         struct tn_err *err);
/* Reads a file (at most 64 MiB) and parses it as a stream; err names the file on failure, and a
 * missing file is TN_ENOTFOUND. */
json_t *tn_yaml_load_file(const char *path, const struct tn_yaml_limits *lim, struct tn_err *err);

/* Block-style YAML text of v (malloc'd, caller frees): 2-space indent, lists under a key at the
 * key's column as kubectl prints them, empty collections as {} and [], strings double-quoted
 * when a plain scalar could be read back as something else, and keys longer than libyaml's
 * implicit-key limit as `? key` entries. tn_yaml_load_one of the text equals v (for v within
 * the loader's default limits). NULL on OOM or
 * when a string contains NUL (which no YAML text the loader accepts can carry). */
char *tn_yaml_dump(const json_t *v);

#endif
