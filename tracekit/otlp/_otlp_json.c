/* OTLP/JSON trace requests as OTLP protobuf bytes, for the compiled decoder (_spans.c).
 *
 * The Python decoder of OTLP/JSON (tracekit/otlp/json_decode.py) walks a document orjson has
 * parsed into dicts and lists: ~30k spans/s in a decode worker, where the compiled protobuf
 * decoder makes ~400k. This file reads the JSON text once and writes the same request as
 * protobuf, which _spans.c then decodes into the store's columns: the semantics of the two
 * paths stay those of the protobuf decoder, with one place that decides what a span holds.
 *
 * It covers what exporters send: valid UTF-8 JSON with the lowerCamelCase names of the OTLP
 * specification, ids as hex, integers as JSON integers or decimal strings,
 * enums as integers or their names, one value per AnyValue. Anything else (snake_case names,
 * a repeated member, a negative or fractional integer, a value of another type, a lone
 * surrogate, bytes values that are not canonical base64, nesting past MAX_DEPTH, malformed
 * JSON) makes `traces` return None, and the caller runs the Python decoder, which is the
 * reference: it repairs, notes, rejects or refuses. Members the reference ignores (schemaUrl,
 * a resource's or scope's dropped counts, unknown names) are skipped here, their JSON still
 * checked. tests/test_fast_decode.py holds the two paths to the same tables.
 *
 * traces(data) -> bytes | None
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 32      /* AnyValue nesting the reference decodes without a note */
#define MAX_LEVELS 48     /* nested messages being written at once */
#define MAX_JSON_DEPTH 64 /* containers skipped inside an ignored member */

enum { OK = 0, FALLBACK = 1, ERROR = -1 };
#define TRY(expr) do { int _rc = (expr); if (_rc) return _rc; } while (0)

/* --- Growable buffers ------------------------------------------------------------------------ */

typedef struct { char *p; size_t len, cap; } Buf;

static int grow(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) { PyErr_NoMemory(); return ERROR; }
    b->p = p; b->cap = cap;
    return OK;
}

static inline int put(Buf *b, const void *src, size_t n) {
    if (!n) return OK;
    TRY(grow(b, n));
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return OK;
}

static inline int put_varint(Buf *b, uint64_t v) {
    TRY(grow(b, 10));
    while (v >= 0x80) { b->p[b->len++] = (char)(v | 0x80); v >>= 7; }
    b->p[b->len++] = (char)v;
    return OK;
}

static inline int put_tag(Buf *b, uint32_t field, uint32_t wire) {
    return put_varint(b, ((uint64_t)field << 3) | wire);
}

static inline int put_fixed64(Buf *b, uint32_t field, uint64_t v) {
    TRY(put_tag(b, field, 1));
    return put(b, &v, 8);   /* little-endian, as on every platform this builds for */
}

static inline int put_fixed32(Buf *b, uint32_t field, uint32_t v) {
    TRY(put_tag(b, field, 5));
    return put(b, &v, 4);
}

static inline int put_bytes(Buf *b, uint32_t field, const void *p, size_t n) {
    TRY(put_tag(b, field, 2));
    TRY(put_varint(b, n));
    return put(b, p, n);
}

/* --- Reading JSON ---------------------------------------------------------------------------- */

typedef struct {
    const unsigned char *p, *end;
    Buf level[MAX_LEVELS];   /* a nested message being written, by nesting */
    Buf text;                /* the last string read, unescaped */
    Buf key;                 /* the last member name read, unescaped */
} Json;

static inline void ws(Json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
}

static inline int peek(Json *j) {
    ws(j);
    return j->p < j->end ? *j->p : -1;
}

static inline int expect(Json *j, char c) {
    if (peek(j) != c) return FALLBACK;
    j->p++;
    return OK;
}

static inline int literal(Json *j, const char *word, size_t n) {
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n)) return FALLBACK;
    j->p += n;
    return OK;
}

static int hex4(const unsigned char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return FALLBACK;
    }
    *out = v;
    return OK;
}

static int put_utf8(Buf *b, uint32_t cp) {
    char s[4];
    size_t n;
    if (cp < 0x80) { s[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { s[0] = (char)(0xC0 | cp >> 6); s[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        s[0] = (char)(0xE0 | cp >> 12); s[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        s[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        s[0] = (char)(0xF0 | cp >> 18); s[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        s[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); s[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
    }
    return put(b, s, n);
}

/* The length of the valid UTF-8 sequence at p (no overlongs, no surrogates, at most
 * U+10FFFF), or 0. */
static size_t utf8_length(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    size_t n;
    uint32_t cp, min;
    if (c < 0xC2) return 0;
    if (c < 0xE0) { n = 2; cp = c & 0x1F; min = 0x80; }
    else if (c < 0xF0) { n = 3; cp = c & 0x0F; min = 0x800; }
    else if (c < 0xF5) { n = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

/* A JSON string, unescaped into `out` (which is emptied first). */
static int string(Json *j, Buf *out) {
    out->len = 0;
    if (peek(j) != '"') return FALLBACK;
    j->p++;
    for (;;) {
        const unsigned char *run = j->p;
        while (j->p < j->end && *j->p != '"' && *j->p != '\\' && *j->p >= 0x20 && *j->p < 0x80) j->p++;
        TRY(put(out, run, (size_t)(j->p - run)));
        if (j->p >= j->end) return FALLBACK;
        unsigned c = *j->p;
        if (c == '"') { j->p++; return OK; }
        if (c < 0x20) return FALLBACK;   /* a control character must be escaped */
        if (c >= 0x80) {
            size_t n = utf8_length(j->p, j->end);
            if (!n) return FALLBACK;     /* the reference refuses text that is not UTF-8 */
            TRY(put(out, j->p, n));
            j->p += n;
            continue;
        }
        /* a backslash */
        if (j->end - j->p < 2) return FALLBACK;
        c = j->p[1];
        j->p += 2;
        char simple = 0;
        switch (c) {
        case '"': simple = '"'; break;
        case '\\': simple = '\\'; break;
        case '/': simple = '/'; break;
        case 'b': simple = '\b'; break;
        case 'f': simple = '\f'; break;
        case 'n': simple = '\n'; break;
        case 'r': simple = '\r'; break;
        case 't': simple = '\t'; break;
        case 'u': {
            uint32_t cp, low;
            if (j->end - j->p < 4 || hex4(j->p, &cp)) return FALLBACK;
            j->p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return FALLBACK;   /* a lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || hex4(j->p + 2, &low)
                        || low < 0xDC00 || low > 0xDFFF)
                    return FALLBACK;   /* a lone high surrogate */
                j->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            TRY(put_utf8(out, cp));
            continue;
        }
        default: return FALLBACK;
        }
        TRY(put(out, &simple, 1));
    }
}

/* A JSON number's text: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static int number(Json *j, const unsigned char **start, size_t *len, int *integral) {
    ws(j);
    const unsigned char *p = j->p, *s = p;
    if (p < j->end && *p == '-') p++;
    if (p >= j->end) return FALLBACK;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') { while (p < j->end && *p >= '0' && *p <= '9') p++; }
    else return FALLBACK;
    *integral = 1;
    if (p < j->end && *p == '.') {
        p++;
        if (p >= j->end || *p < '0' || *p > '9') return FALLBACK;
        while (p < j->end && *p >= '0' && *p <= '9') p++;
        *integral = 0;
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < j->end && (*p == '+' || *p == '-')) p++;
        if (p >= j->end || *p < '0' || *p > '9') return FALLBACK;
        while (p < j->end && *p >= '0' && *p <= '9') p++;
        *integral = 0;
    }
    *start = s;
    *len = (size_t)(p - s);
    j->p = p;
    return OK;
}

/* Decimal digits as an unsigned integer: no sign, no leading zeros, nothing else. */
static int decimal_u64(const unsigned char *s, size_t n, uint64_t *out) {
    if (!n || n > 20 || (n > 1 && *s == '0')) return FALLBACK;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return FALLBACK;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return FALLBACK;
        v = v * 10 + d;
    }
    *out = v;
    return OK;
}

/* Decimal digits with an optional '-' as a signed 64-bit integer. */
static int decimal_i64(const unsigned char *s, size_t n, int64_t *out) {
    int negative = n && *s == '-';
    uint64_t v;
    TRY(decimal_u64(s + negative, n - (size_t)negative, &v));
    if (v > (uint64_t)INT64_MAX + negative) return FALLBACK;
    *out = negative ? (int64_t)(0 - v) : (int64_t)v;
    return OK;
}

/* Any JSON value, checked and skipped (a member the reference ignores). */
static int skip_value(Json *j, int depth) {
    if (depth > MAX_JSON_DEPTH) return FALLBACK;
    int c = peek(j);
    if (c == '"') return string(j, &j->text);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        if (peek(j) == close) { j->p++; return OK; }
        for (;;) {
            if (c == '{') { TRY(string(j, &j->text)); TRY(expect(j, ':')); }
            TRY(skip_value(j, depth + 1));
            int next = peek(j);
            if (next != close && next != ',') return FALLBACK;
            j->p++;
            if (next == close) return OK;
        }
    }
    if (c == 't') return literal(j, "true", 4);
    if (c == 'f') return literal(j, "false", 5);
    if (c == 'n') return literal(j, "null", 4);
    const unsigned char *s;
    size_t n;
    int integral;
    return number(j, &s, &n, &integral);
}

static inline int null(Json *j) {
    if (peek(j) != 'n') return 0;
    return literal(j, "null", 4) == OK;
}

/* Members of an object: `member` is called for each name (in j->key), positioned at its
 * value. The name must be read before the value: member names come from a small fixed set. */
typedef int (*Member)(Json *j, int index, void *ctx);

static int object(Json *j, const char *const *names, Member member, void *ctx) {
    TRY(expect(j, '{'));
    uint64_t seen = 0;
    if (peek(j) == '}') { j->p++; return OK; }
    for (;;) {
        TRY(string(j, &j->key));
        TRY(expect(j, ':'));
        int index = -1;
        for (int i = 0; names[i]; i++) {
            size_t n = strlen(names[i]);
            if (n == j->key.len && !memcmp(names[i], j->key.p, n)) { index = i; break; }
        }
        if (index < 0) {
            /* The reference ignores unknown members, but reads protobuf names (snake_case)
             * through the protobuf mapping. */
            if (memchr(j->key.p, '_', j->key.len)) return FALLBACK;
            TRY(skip_value(j, 1));
        } else {
            if (seen >> index & 1) return FALLBACK;   /* repeated: orjson keeps the last */
            seen |= (uint64_t)1 << index;
            TRY(member(j, index, ctx));
        }
        int next = peek(j);
        if (next != '}' && next != ',') return FALLBACK;
        j->p++;
        if (next == '}') return OK;
    }
}

/* An array, `item` called at each element. */
typedef int (*Item)(Json *j, void *ctx);

static int array(Json *j, Item item, void *ctx) {
    if (null(j)) return OK;
    TRY(expect(j, '['));
    if (peek(j) == ']') { j->p++; return OK; }
    for (;;) {
        TRY(item(j, ctx));
        int next = peek(j);
        if (next != ']' && next != ',') return FALLBACK;
        j->p++;
        if (next == ']') return OK;
    }
}

/* --- Fields -------------------------------------------------------------------------------------- */

/* A string member as a protobuf string field (empty or null: absent, as protobuf has it). */
static int text_field(Json *j, Buf *out, uint32_t field) {
    if (null(j)) return OK;
    TRY(string(j, &j->text));
    return j->text.len ? put_bytes(out, field, j->text.p, j->text.len) : OK;
}

/* A non-negative integer member (a JSON integer or a decimal string) up to `max`. */
static int unsigned_member(Json *j, uint64_t max, uint64_t *value) {
    *value = 0;
    if (null(j)) return OK;
    const unsigned char *s;
    size_t n;
    if (peek(j) == '"') {
        TRY(string(j, &j->text));
        s = (const unsigned char *)j->text.p;
        n = j->text.len;
    } else {
        int integral;
        TRY(number(j, &s, &n, &integral));
        if (!integral) return FALLBACK;
    }
    TRY(decimal_u64(s, n, value));
    return *value <= max ? OK : FALLBACK;
}

static int varint_field(Json *j, Buf *out, uint32_t field, uint64_t max) {
    uint64_t v;
    TRY(unsigned_member(j, max, &v));
    return v ? (put_tag(out, field, 0) || put_varint(out, v) ? ERROR : OK) : OK;
}

static int fixed64_field(Json *j, Buf *out, uint32_t field) {
    uint64_t v;
    TRY(unsigned_member(j, UINT64_MAX, &v));
    return v ? put_fixed64(out, field, v) : OK;
}

static int fixed32_field(Json *j, Buf *out, uint32_t field) {
    uint64_t v;
    TRY(unsigned_member(j, UINT32_MAX, &v));
    return v ? put_fixed32(out, field, (uint32_t)v) : OK;
}

/* An enum member: an integer below `count`, as a number or decimal string, or its name. */
static int enum_field(Json *j, Buf *out, uint32_t field, const char *const *names, int count) {
    uint64_t v = 0;
    if (peek(j) == '"') {
        TRY(string(j, &j->text));
        int found = 0;
        for (int i = 0; i < count; i++) {
            if (strlen(names[i]) == j->text.len && !memcmp(names[i], j->text.p, j->text.len)) {
                v = (uint64_t)i; found = 1; break;
            }
        }
        if (!found && decimal_u64((const unsigned char *)j->text.p, j->text.len, &v)) return FALLBACK;
    } else {
        TRY(unsigned_member(j, UINT64_MAX, &v));
    }
    if (v >= (uint64_t)count) return FALLBACK;
    return v ? (put_tag(out, field, 0) || put_varint(out, v) ? ERROR : OK) : OK;
}

/* An id member: hex digits, two a byte (empty or null: absent). An id of the wrong length is
 * written as it is: the compiled decoder leaves a span with one to the reference, which
 * rejects it, and keeps a link's as the reference does. */
static int id_field(Json *j, Buf *out, uint32_t field) {
    if (null(j)) return OK;
    TRY(string(j, &j->text));
    size_t n = j->text.len / 2;
    if (!j->text.len) return OK;
    if (j->text.len % 2 || n > 64) return FALLBACK;   /* not hex: the reference's business */
    unsigned char raw[64];
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        unsigned char pair[4] = {'0', '0', (unsigned char)j->text.p[2 * i], (unsigned char)j->text.p[2 * i + 1]};
        if (hex4(pair, &v)) return FALLBACK;
        raw[i] = (unsigned char)v;
    }
    return put_bytes(out, field, raw, n);
}

/* A nested message: written into the next level's buffer by `write`, then into `out`. */
typedef int (*Writer)(Json *j, Buf *out, int level);

static int message(Json *j, Buf *out, uint32_t field, int level, Writer write) {
    if (level >= MAX_LEVELS) return FALLBACK;
    Buf *inner = &j->level[level];
    inner->len = 0;
    TRY(write(j, inner, level + 1));
    return put_bytes(out, field, inner->p, inner->len);
}

/* --- AnyValue and KeyValue ------------------------------------------------------------------------ */

static int any_value(Json *j, Buf *out, int level);
static int key_value(Json *j, Buf *out, int level);

static const unsigned char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Canonical base64 (padded, unused bits zero) as bytes: what the reference keeps as text
 * and the protobuf path writes back the same. */
static int base64_field(Json *j, Buf *out, uint32_t field) {
    TRY(string(j, &j->text));
    size_t n = j->text.len;
    const unsigned char *s = (const unsigned char *)j->text.p;
    if (n % 4) return FALLBACK;
    Buf *raw = &j->key;   /* free now: the member name was read */
    raw->len = 0;
    for (size_t i = 0; i < n; i += 4) {
        int pad = (s[i + 2] == '=') + (s[i + 3] == '=');
        if (pad && i + 4 != n) return FALLBACK;
        if (s[i + 2] == '=' && s[i + 3] != '=') return FALLBACK;
        uint32_t v = 0;
        for (int k = 0; k < 4; k++) {
            const unsigned char *at = k >= 4 - pad ? NULL : (const unsigned char *)memchr(B64, s[i + k], 64);
            if (k < 4 - pad && !at) return FALLBACK;
            v = v << 6 | (at ? (uint32_t)(at - B64) : 0);
        }
        unsigned char bytes[3] = {(unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
        if ((pad == 1 && (v & 0xFF)) || (pad == 2 && (v & 0xFFFF))) return FALLBACK;
        TRY(put(raw, bytes, (size_t)(3 - pad)));
    }
    return put_bytes(out, field, raw->p, raw->len);
}

static int double_field(Json *j, Buf *out) {
    double v;
    if (peek(j) == '"') {   /* the protobuf mapping's spellings of what JSON lacks */
        TRY(string(j, &j->text));
        if (j->text.len == 3 && !memcmp(j->text.p, "NaN", 3)) v = Py_NAN;
        else if (j->text.len == 8 && !memcmp(j->text.p, "Infinity", 8)) v = Py_HUGE_VAL;
        else if (j->text.len == 9 && !memcmp(j->text.p, "-Infinity", 9)) v = -Py_HUGE_VAL;
        else return FALLBACK;
    } else {
        const unsigned char *s;
        size_t n;
        int integral;
        TRY(number(j, &s, &n, &integral));
        if (integral) {   /* an int to the reference, then float(): -0 is 0.0 */
            int64_t i;
            TRY(decimal_i64(s, n, &i));
            v = (double)i;
        } else {
            char text[64];
            if (n >= sizeof text) return FALLBACK;
            memcpy(text, s, n);
            text[n] = 0;
            v = PyOS_string_to_double(text, NULL, NULL);   /* correctly rounded, as orjson's */
            if (v == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return FALLBACK; }
            if (Py_IS_INFINITY(v)) return FALLBACK;   /* past the largest double */
        }
    }
    uint64_t bits;
    memcpy(&bits, &v, 8);
    return put_fixed64(out, 4, bits);
}

typedef struct { Buf *out; int level; } Into;

/* A message whose members `member` writes (each a member name in `names`), as a Writer. */
#define MESSAGE(name, names, member)                                  \
    static int name(Json *j, Buf *out, int level) {                   \
        Into into = {out, level};                                     \
        return object(j, names, member, &into);                       \
    }

static int value_item(Json *j, void *ctx) {
    Into *into = ctx;
    return message(j, into->out, 1, into->level, any_value);
}

static int key_value_item(Json *j, void *ctx) {
    Into *into = ctx;
    return message(j, into->out, 1, into->level, key_value);
}

static const char *const VALUES[] = {"values", NULL};

static int array_values(Json *j, int index, void *ctx) {
    (void)index;
    if (null(j)) return FALLBACK;
    return array(j, value_item, ctx);
}

static int kvlist_values(Json *j, int index, void *ctx) {
    (void)index;
    if (null(j)) return FALLBACK;
    return array(j, key_value_item, ctx);
}

MESSAGE(array_value, VALUES, array_values)

MESSAGE(kvlist_value, VALUES, kvlist_values)

static const char *const ANY_VALUE[] = {"stringValue", "boolValue", "intValue", "doubleValue",
                                        "arrayValue", "kvlistValue", "bytesValue", NULL};

typedef struct { Buf *out; int level; int set; } AnyCtx;

static int any_member(Json *j, int index, void *ctx) {
    AnyCtx *any = ctx;
    if (any->set++) return FALLBACK;   /* the reference takes the first: leave it to it */
    if (null(j)) return FALLBACK;
    Buf *out = any->out;
    switch (index) {
    case 0: TRY(string(j, &j->text)); return put_bytes(out, 1, j->text.p, j->text.len);
    case 1: {
        int value;
        if (peek(j) == 't') { TRY(literal(j, "true", 4)); value = 1; }
        else { TRY(literal(j, "false", 5)); value = 0; }
        return put_tag(out, 2, 0) || put_varint(out, (uint64_t)value) ? ERROR : OK;
    }
    case 2: {
        const unsigned char *s;
        size_t n;
        int64_t v;
        if (peek(j) == '"') {
            TRY(string(j, &j->text));
            s = (const unsigned char *)j->text.p;
            n = j->text.len;
        } else {
            int integral;
            TRY(number(j, &s, &n, &integral));
            if (!integral) return FALLBACK;
        }
        TRY(decimal_i64(s, n, &v));
        return put_tag(out, 3, 0) || put_varint(out, (uint64_t)v) ? ERROR : OK;
    }
    case 3: return double_field(j, out);
    case 4: case 5:
        if (any->level >= MAX_DEPTH) return FALLBACK;   /* cut with a note by the reference */
        return message(j, out, index == 4 ? 5 : 6, any->level, index == 4 ? array_value : kvlist_value);
    case 6: return base64_field(j, out, 7);
    }
    return FALLBACK;
}

/* An AnyValue object; the nesting of AnyValues is counted in levels (two per value). */
static int any_value(Json *j, Buf *out, int level) {
    AnyCtx any = {out, level, 0};
    return object(j, ANY_VALUE, any_member, &any);
}

static const char *const KEY_VALUE[] = {"key", "value", NULL};

static int key_value_member(Json *j, int index, void *ctx) {
    Into *into = ctx;
    if (index == 0) {
        if (null(j)) return FALLBACK;   /* a key that is not a string: the reference refuses */
        TRY(string(j, &j->text));
        return j->text.len ? put_bytes(into->out, 1, j->text.p, j->text.len) : OK;
    }
    if (null(j)) return OK;
    return message(j, into->out, 2, into->level, any_value);
}

MESSAGE(key_value, KEY_VALUE, key_value_member)

typedef struct { Buf *out; int level; uint32_t field; } Attrs;

static int attribute_item(Json *j, void *ctx) {
    Attrs *a = ctx;
    return message(j, a->out, a->field, a->level, key_value);
}

static int attributes(Json *j, Buf *out, uint32_t field, int level) {
    Attrs a = {out, level, field};
    return array(j, attribute_item, &a);
}

/* --- Spans ------------------------------------------------------------------------------------- */

static const char *const KINDS[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                                    "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"};
static const char *const STATUS_CODES[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"};

static const char *const STATUS[] = {"message", "code", NULL};

static int status_member(Json *j, int index, void *ctx) {
    Into *into = ctx;
    return index == 0 ? text_field(j, into->out, 2) : enum_field(j, into->out, 3, STATUS_CODES, 3);
}

MESSAGE(status, STATUS, status_member)

static const char *const EVENT[] = {"timeUnixNano", "name", "attributes", "droppedAttributesCount", NULL};

static int event_member(Json *j, int index, void *ctx) {
    Into *into = ctx;
    switch (index) {
    case 0: return fixed64_field(j, into->out, 1);
    case 1: return text_field(j, into->out, 2);
    case 2: return attributes(j, into->out, 3, into->level);
    default: return varint_field(j, into->out, 4, UINT32_MAX);
    }
}

MESSAGE(event, EVENT, event_member)

static const char *const LINK[] = {"traceId", "spanId", "traceState", "attributes",
                                   "droppedAttributesCount", "flags", NULL};

static int link_member(Json *j, int index, void *ctx) {
    Into *into = ctx;
    switch (index) {
    case 0: return id_field(j, into->out, 1);
    case 1: return id_field(j, into->out, 2);
    case 2: return text_field(j, into->out, 3);
    case 3: return attributes(j, into->out, 4, into->level);
    case 4: return varint_field(j, into->out, 5, UINT32_MAX);
    default: return fixed32_field(j, into->out, 6);
    }
}

MESSAGE(span_link, LINK, link_member)

typedef struct { Buf *out; int level; uint32_t field; Writer write; } Repeated;

static int repeated_item(Json *j, void *ctx) {
    Repeated *r = ctx;
    if (null(j)) return FALLBACK;
    return message(j, r->out, r->field, r->level, r->write);
}

static int repeated(Json *j, Buf *out, uint32_t field, int level, Writer write) {
    Repeated r = {out, level, field, write};
    return array(j, repeated_item, &r);
}

static const char *const SPAN[] = {"traceId", "spanId", "traceState", "parentSpanId", "name", "kind",
                                   "startTimeUnixNano", "endTimeUnixNano", "attributes",
                                   "droppedAttributesCount", "events", "droppedEventsCount", "links",
                                   "droppedLinksCount", "status", "flags", NULL};

static int span_member(Json *j, int index, void *ctx) {
    Into *into = ctx;
    Buf *out = into->out;
    switch (index) {
    case 0: return id_field(j, out, 1);
    case 1: return id_field(j, out, 2);
    case 2: return text_field(j, out, 3);
    case 3: return id_field(j, out, 4);
    case 4: return text_field(j, out, 5);
    case 5: return enum_field(j, out, 6, KINDS, 6);
    case 6: return fixed64_field(j, out, 7);
    case 7: return fixed64_field(j, out, 8);
    case 8: return attributes(j, out, 9, into->level);
    case 9: return varint_field(j, out, 10, UINT32_MAX);
    case 10: return repeated(j, out, 11, into->level, event);
    case 11: return varint_field(j, out, 12, UINT32_MAX);
    case 12: return repeated(j, out, 13, into->level, span_link);
    case 13: return varint_field(j, out, 14, UINT32_MAX);
    case 14: return null(j) ? OK : message(j, out, 15, into->level, status);
    default: return fixed32_field(j, out, 16);
    }
}

MESSAGE(span, SPAN, span_member)

/* The reference reads a scope's name and version only, and a resource's attributes only. */
static const char *const SCOPE[] = {"name", "version", NULL};

static int scope_member(Json *j, int index, void *ctx) {
    Into *into = ctx;
    return text_field(j, into->out, index == 0 ? 1 : 2);
}

MESSAGE(scope, SCOPE, scope_member)

static const char *const SCOPE_SPANS[] = {"scope", "spans", NULL};

static int scope_spans_member(Json *j, int index, void *ctx) {
    Into *into = ctx;
    if (index == 0) return null(j) ? OK : message(j, into->out, 1, into->level, scope);
    return repeated(j, into->out, 2, into->level, span);
}

MESSAGE(scope_spans, SCOPE_SPANS, scope_spans_member)

static const char *const RESOURCE[] = {"attributes", NULL};

static int resource_member(Json *j, int index, void *ctx) {
    Into *into = ctx;
    (void)index;
    return attributes(j, into->out, 1, into->level);
}

MESSAGE(resource, RESOURCE, resource_member)

static const char *const RESOURCE_SPANS[] = {"resource", "scopeSpans", NULL};

static int resource_spans_member(Json *j, int index, void *ctx) {
    Into *into = ctx;
    if (index == 0) return null(j) ? OK : message(j, into->out, 1, into->level, resource);
    return repeated(j, into->out, 2, into->level, scope_spans);
}

MESSAGE(resource_spans, RESOURCE_SPANS, resource_spans_member)

static const char *const REQUEST[] = {"resourceSpans", NULL};

static int request_member(Json *j, int index, void *ctx) {
    Into *into = ctx;
    (void)index;
    return repeated(j, into->out, 1, into->level, resource_spans);
}

/* Members the reference does not read (schemaUrl, dropped counts of resources and scopes, a
 * scope's attributes, unknown names) are not listed: `object` checks and skips them. */
static int request(Json *j, Buf *out) {
    Into into = {out, 0};
    TRY(object(j, REQUEST, request_member, &into));
    ws(j);
    return j->p == j->end ? OK : FALLBACK;   /* nothing may follow the document */
}

/* --- Module ------------------------------------------------------------------------------------- */

static PyObject *traces(PyObject *Py_UNUSED(self), PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    Json j;
    memset(&j, 0, sizeof j);
    j.p = view.buf;
    j.end = j.p + view.len;
    Buf out = {0};
    int rc = request(&j, &out);
    PyObject *result = NULL;
    if (rc == OK) result = PyBytes_FromStringAndSize(out.p ? out.p : "", (Py_ssize_t)out.len);
    else if (rc == FALLBACK) result = Py_NewRef(Py_None);
    free(out.p);
    free(j.text.p);
    free(j.key.p);
    for (int i = 0; i < MAX_LEVELS; i++) free(j.level[i].p);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"traces", traces, METH_O,
     "An OTLP/JSON ExportTraceServiceRequest as protobuf bytes, or None for the reference decoder."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_otlp_json",
                                    "OTLP/JSON trace requests as protobuf, for _spans.", -1, methods};

PyMODINIT_FUNC PyInit__otlp_json(void) { return PyModule_Create(&module); }
