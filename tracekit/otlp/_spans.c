/* The ingest hot path in C: an OTLP ExportTraceServiceRequest, as protobuf bytes, straight
 * into the buffers of the Arrow columns the store takes (tracekit/otlp/batches.py SPAN_SCHEMA),
 * attribute maps written as JSON text on the way.
 *
 * It covers what exporters send: valid spans with valid UTF-8, maps of distinct keys within
 * the caps. Anything else (an invalid id, a clamped timestamp, a duplicate key, a value past a
 * cap, nesting deeper than MAX_DEPTH, invalid UTF-8, a field merged from two occurrences, a
 * malformed message) makes `decode` return None, and the caller runs the Python decoder
 * (tracekit/otlp/decode.py), which is the reference: it notes, repairs, rejects or refuses.
 * So this file never decides a corner case; tests/test_fast_decode.py holds the two to the
 * same output.
 *
 * decode(data, is_secret) -> None | (n_spans, resources, columns, attribute_keys)
 *   is_secret: None, or a callable taking an attribute key (str) and returning whether its
 *              value is masked (called once per distinct key per request)
 *   resources: list of (start, end) byte ranges of each ResourceSpans' Resource (None when
 *              absent), in order; the "resource" column holds an index into it
 *   columns:   dict of name -> buffers, see finish_* below
 *   attribute_keys: list of the distinct top-level keys of the spans' attribute maps (the
 *              store keeps a register of them: tracekit/sql/migrations/003_span_attribute_keys.sql)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

#define MAX_ATTRIBUTES 1000
#define MAX_VALUE_CHARS 1048576
#define MAX_DEPTH 32
#define MAX_TIMESTAMP_NS 9223372036854775806ULL
#define REDACTED "\"[REDACTED]\""

/* --- Growable buffers ---------------------------------------------------------------------- */

typedef struct { char *p; size_t len, cap; } Buf;

static int grow(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) { PyErr_NoMemory(); return -1; }
    b->p = p; b->cap = cap;
    return 0;
}

static inline int put(Buf *b, const void *src, size_t n) {
    if (grow(b, n)) return -1;
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

static inline int put_char(Buf *b, char c) {
    if (b->len == b->cap && grow(b, 1)) return -1;
    b->p[b->len++] = c;
    return 0;
}

#define PUT_SCALAR(name, type) \
    static inline int name(Buf *b, type v) { return put(b, &v, sizeof v); }
PUT_SCALAR(put_i64, int64_t)
PUT_SCALAR(put_u32, uint32_t)
PUT_SCALAR(put_i32, int32_t)
PUT_SCALAR(put_u8, uint8_t)

/* A string column: UTF-8 data, int32 offsets, one validity byte per row (a bitmap at the end). */
typedef struct { Buf data, offsets, valid; Py_ssize_t rows, nulls; } Str;

static int str_init(Str *s) { return put_i32(&s->offsets, 0); }

static int str_end(Str *s, int valid) {
    if (s->data.len > INT32_MAX) { PyErr_SetString(PyExc_OverflowError, "column over 2 GiB"); return -1; }
    if (put_i32(&s->offsets, (int32_t)s->data.len) || put_u8(&s->valid, (uint8_t)valid)) return -1;
    s->rows++;
    if (!valid) s->nulls++;
    return 0;
}

static int str_add(Str *s, const char *p, size_t n) {
    return put(&s->data, p, n) || str_end(s, 1);
}

static int str_null(Str *s) { return str_end(s, 0); }

static const char HEX[] = "0123456789abcdef";

static int str_hex(Str *s, const uint8_t *p, size_t n) {
    if (grow(&s->data, 2 * n)) return -1;
    char *out = s->data.p + s->data.len;
    for (size_t i = 0; i < n; i++) { out[2 * i] = HEX[p[i] >> 4]; out[2 * i + 1] = HEX[p[i] & 15]; }
    s->data.len += 2 * n;
    return str_end(s, 1);
}

/* A list column: int32 offsets into its child rows, one validity byte per row. */
typedef struct { Buf offsets, valid; Py_ssize_t rows, nulls; } List;

static int list_init(List *l) { return put_i32(&l->offsets, 0); }

static int list_end(List *l, int32_t children) {
    int valid = children > 0;   /* no events -> NULL, as the Python decoder gives */
    int32_t last;
    memcpy(&last, l->offsets.p + l->offsets.len - 4, 4);
    if (put_i32(&l->offsets, last + children) || put_u8(&l->valid, (uint8_t)valid)) return -1;
    l->rows++;
    if (!valid) l->nulls++;
    return 0;
}

/* --- Protobuf wire format -------------------------------------------------------------------- */

/* Decoding stops (and the caller falls back to the Python decoder) with FALLBACK; a Python
 * error (memory, a failing is_secret) propagates with ERROR. */
enum { OK = 0, FALLBACK = 1, ERROR = -1 };

typedef struct { const uint8_t *p, *end; } Reader;

static inline int read_varint(Reader *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return FALLBACK;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *out = v; return OK; }
    }
    return FALLBACK;
}

typedef struct { uint32_t field, wire; } Tag;

static inline int read_tag(Reader *r, Tag *t) {
    uint64_t v;
    if (read_varint(r, &v) || v >> 32) return FALLBACK;
    t->field = (uint32_t)(v >> 3);
    t->wire = (uint32_t)(v & 7);
    return t->field == 0 ? FALLBACK : OK;
}

static inline int read_len(Reader *r, Reader *inner) {
    uint64_t n;
    if (read_varint(r, &n) || n > (uint64_t)(r->end - r->p)) return FALLBACK;
    inner->p = r->p;
    inner->end = r->p + n;
    r->p += n;
    return OK;
}

static inline int read_fixed64(Reader *r, uint64_t *out) {
    if (r->end - r->p < 8) return FALLBACK;
    memcpy(out, r->p, 8);   /* little-endian, as on every platform this builds for */
    r->p += 8;
    return OK;
}

static inline int read_fixed32(Reader *r, uint32_t *out) {
    if (r->end - r->p < 4) return FALLBACK;
    memcpy(out, r->p, 4);
    r->p += 4;
    return OK;
}

static int skip(Reader *r, uint32_t wire) {
    uint64_t v;
    Reader ignored;
    switch (wire) {
    case 0: return read_varint(r, &v);
    case 1: return read_fixed64(r, &v);
    case 2: return read_len(r, &ignored);
    case 5: { uint32_t w; return read_fixed32(r, &w); }
    default: return FALLBACK;   /* groups, or not protobuf */
    }
}

#define EXPECT(tag, w) do { if ((tag).wire != (w)) return FALLBACK; } while (0)
#define TRY(expr) do { int _rc = (expr); if (_rc) return _rc; } while (0)

/* UTF-8 as Python's decoder accepts it: no overlongs, no surrogates, at most U+10FFFF. */
static int valid_utf8(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t chunk;
            memcpy(&chunk, s + i, 8);
            if (!(chunk & 0x8080808080808080ULL)) { i += 8; continue; }
        }
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t need;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; }
        else return 0;
        if (i + need >= n) return 0;
        for (size_t k = 1; k <= need; k++) {
            uint8_t d = s[i + k];
            if ((d & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (d & 0x3F);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
        i += need + 1;
    }
    return 1;
}

/* --- Attribute maps as JSON ------------------------------------------------------------------ */

typedef struct { const uint8_t *p; size_t n; int secret; } KeyVerdict;

/* Keys met in one request, by open addressing; a slot holds what was decided for its key. */
typedef struct { KeyVerdict *slots; size_t cap, count; } KeyTable;

typedef struct {
    PyObject *is_secret;        /* None or callable */
    KeyTable secrets;           /* every key met: whether its value is masked */
    int in_span_attributes;     /* json_map is writing a span's own attribute map */
    KeyTable span_keys;         /* the distinct top-level keys of those maps */
} Decoder;

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ULL; }
    return h;
}

/* The slot of the key p[0:n] (hash h) in the table: its own (*found = 1) or the empty one it
 * would take (*found = 0; the caller fills it and counts it). */
static int table_slot(KeyTable *t, const uint8_t *p, size_t n, uint64_t h, size_t *slot, int *found) {
    if (2 * (t->count + 1) > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        KeyVerdict *slots = calloc(cap, sizeof *slots);
        if (!slots) { PyErr_NoMemory(); return ERROR; }
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->slots[i].p) continue;
            size_t j = hash_bytes(t->slots[i].p, t->slots[i].n) & (cap - 1);
            while (slots[j].p) j = (j + 1) & (cap - 1);
            slots[j] = t->slots[i];
        }
        free(t->slots);
        t->slots = slots;
        t->cap = cap;
    }
    size_t j = h & (t->cap - 1);
    while (t->slots[j].p && !(t->slots[j].n == n && memcmp(t->slots[j].p, p, n) == 0))
        j = (j + 1) & (t->cap - 1);
    *slot = j;
    *found = t->slots[j].p != NULL;
    return OK;
}

/* Whether the key's value is masked; the key is valid UTF-8 (checked by the caller). */
static int key_is_secret(Decoder *d, const uint8_t *p, size_t n, uint64_t h, int *secret) {
    if (d->is_secret == Py_None) { *secret = 0; return OK; }
    size_t j;
    int found;
    TRY(table_slot(&d->secrets, p, n, h, &j, &found));
    if (found) { *secret = d->secrets.slots[j].secret; return OK; }
    PyObject *key = PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, "strict");
    if (!key) return ERROR;
    PyObject *verdict = PyObject_CallOneArg(d->is_secret, key);
    Py_DECREF(key);
    if (!verdict) return ERROR;
    int truth = PyObject_IsTrue(verdict);
    Py_DECREF(verdict);
    if (truth < 0) return ERROR;
    d->secrets.slots[j] = (KeyVerdict){p, n, truth};
    d->secrets.count++;
    *secret = truth;
    return OK;
}

/* A top-level key of a span's attribute map, remembered once per request. */
static int span_key_add(Decoder *d, const uint8_t *p, size_t n, uint64_t h) {
    size_t j;
    int found;
    TRY(table_slot(&d->span_keys, p, n, h, &j, &found));
    if (!found) {
        d->span_keys.slots[j] = (KeyVerdict){p, n, 0};
        d->span_keys.count++;
    }
    return OK;
}

static PyObject *span_keys_list(Decoder *d) {
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && i < d->span_keys.cap; i++) {
        const KeyVerdict *slot = &d->span_keys.slots[i];
        if (!slot->p) continue;
        PyObject *key = PyUnicode_DecodeUTF8((const char *)slot->p, (Py_ssize_t)slot->n, "strict");
        if (!key || PyList_Append(list, key)) Py_CLEAR(list);
        Py_XDECREF(key);
    }
    return list;
}

/* The keys of one map, to find a repeated key (Python keeps the last; we fall back). */
typedef struct { const uint8_t *p; size_t n; } Key;
typedef struct { Key *slots; size_t cap; Key local[64]; } KeySet;

static void keyset_init(KeySet *s, size_t count) {
    s->cap = 64;
    s->slots = s->local;
    while (s->cap < 2 * count) s->cap *= 2;
    if (s->cap > 64) s->slots = calloc(s->cap, sizeof(Key));
    else memset(s->local, 0, sizeof s->local);
}

static void keyset_free(KeySet *s) { if (s->slots != s->local) free(s->slots); }

/* 1 if added, 0 if already there */
static int keyset_add(KeySet *s, const uint8_t *p, size_t n, uint64_t h) {
    size_t j = h & (s->cap - 1);
    while (s->slots[j].p) {
        if (s->slots[j].n == n && memcmp(s->slots[j].p, p, n) == 0) return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j].p = p ? p : (const uint8_t *)"";
    s->slots[j].n = n;
    return 1;
}

static int json_string(Buf *out, const uint8_t *s, size_t n) {
    if (grow(out, n + 2)) return ERROR;
    out->p[out->len++] = '"';
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (put(out, s + start, i - start)) return ERROR;
        char esc[7];
        size_t len = 2;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u'; esc[2] = '0'; esc[3] = '0'; esc[4] = HEX[c >> 4]; esc[5] = HEX[c & 15];
            len = 6;
        }
        if (put(out, esc, len)) return ERROR;
        start = i + 1;
    }
    if (put(out, s + start, n - start) || put_char(out, '"')) return ERROR;
    return OK;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int json_base64(Buf *out, const uint8_t *s, size_t n) {
    if (grow(out, 4 * ((n + 2) / 3) + 2)) return ERROR;
    char *o = out->p + out->len;
    *o++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = B64[v >> 18]; *o++ = B64[(v >> 12) & 63]; *o++ = B64[(v >> 6) & 63]; *o++ = B64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *o++ = B64[v >> 18]; *o++ = B64[(v >> 12) & 63]; *o++ = '='; *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        *o++ = B64[v >> 18]; *o++ = B64[(v >> 12) & 63]; *o++ = B64[(v >> 6) & 63]; *o++ = '=';
    }
    *o++ = '"';
    out->len = (size_t)(o - out->p);
    return OK;
}

static int json_double(Buf *out, double v) {
    if (isnan(v) || isinf(v)) return put(out, "null", 4) ? ERROR : OK;
    char *text = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!text) return ERROR;
    int rc = put(out, text, strlen(text)) ? ERROR : OK;
    PyMem_Free(text);
    return rc;
}

static int json_map(Decoder *d, Buf *out, Reader map, uint32_t field, int depth);

/* One AnyValue message as JSON. */
static int json_any(Decoder *d, Buf *out, Reader r, int depth) {
    Tag t;
    int seen = 0;
    Reader value = {0};
    uint32_t which = 0;
    uint64_t scalar = 0;
    while (r.p < r.end) {
        TRY(read_tag(&r, &t));
        switch (t.field) {
        case 1: case 5: case 6: case 7:
            EXPECT(t, 2); TRY(read_len(&r, &value)); break;
        case 2: case 3:
            EXPECT(t, 0); TRY(read_varint(&r, &scalar)); break;
        case 4:
            EXPECT(t, 1); TRY(read_fixed64(&r, &scalar)); break;
        case 8:
            return FALLBACK;   /* string_value_strindex: profiles' dictionaries, not traces */
        default:
            TRY(skip(&r, t.wire)); continue;
        }
        if (seen++) return FALLBACK;   /* two values: protobuf keeps the last or merges */
        which = t.field;
    }
    switch (which) {
    case 0: return put(out, "null", 4) ? ERROR : OK;
    case 1:
        if (!valid_utf8(value.p, (size_t)(value.end - value.p))) return FALLBACK;
        return json_string(out, value.p, (size_t)(value.end - value.p));
    case 2: return put(out, scalar ? "true" : "false", scalar ? 4 : 5) ? ERROR : OK;
    case 3: {
        char text[24];
        int n = snprintf(text, sizeof text, "%lld", (long long)(int64_t)scalar);
        return put(out, text, (size_t)n) ? ERROR : OK;
    }
    case 4: { double v; memcpy(&v, &scalar, 8); return json_double(out, v); }
    case 7: return json_base64(out, value.p, (size_t)(value.end - value.p));
    }
    if (depth >= MAX_DEPTH) return FALLBACK;   /* cut with a note by the Python decoder */
    if (which == 6) return json_map(d, out, value, 1, depth + 1);
    /* array_value */
    if (put_char(out, '[')) return ERROR;
    int first = 1;
    while (value.p < value.end) {
        TRY(read_tag(&value, &t));
        if (t.field != 1) { TRY(skip(&value, t.wire)); continue; }
        EXPECT(t, 2);
        Reader item;
        TRY(read_len(&value, &item));
        if (!first && put_char(out, ',')) return ERROR;
        first = 0;
        TRY(json_any(d, out, item, depth + 1));
    }
    return put_char(out, ']') ? ERROR : OK;
}

/* One KeyValue as `"key":value`. */
static int json_key_value(Decoder *d, Buf *out, Reader r, KeySet *keys, int depth) {
    Tag t;
    Reader key = {(const uint8_t *)"", (const uint8_t *)""}, value = {0};
    int has_value = 0;
    while (r.p < r.end) {
        TRY(read_tag(&r, &t));
        if (t.field == 1) { EXPECT(t, 2); TRY(read_len(&r, &key)); }
        else if (t.field == 2) {
            EXPECT(t, 2);
            if (has_value++) return FALLBACK;   /* merged by protobuf */
            TRY(read_len(&r, &value));
        }
        else if (t.field == 3) return FALLBACK;   /* key_strindex */
        else TRY(skip(&r, t.wire));
    }
    size_t n = (size_t)(key.end - key.p);
    if (!valid_utf8(key.p, n)) return FALLBACK;
    uint64_t h = hash_bytes(key.p, n);     /* one hash for the three tables a key meets */
    if (!keyset_add(keys, key.p, n, h)) return FALLBACK;   /* repeated key */
    if (d->in_span_attributes && depth == 0) TRY(span_key_add(d, key.p, n, h));
    int secret;
    TRY(key_is_secret(d, key.p, n, h, &secret));
    TRY(json_string(out, key.p, n));
    if (put_char(out, ':')) return ERROR;
    if (!has_value) return put(out, secret ? REDACTED : "null", secret ? sizeof REDACTED - 1 : 4) ? ERROR : OK;
    size_t before = out->len;
    TRY(json_any(d, out, value, depth));   /* a masked value is still checked, then dropped */
    if (!secret) return OK;
    out->len = before;
    return put(out, REDACTED, sizeof REDACTED - 1) ? ERROR : OK;
}

/* Occurrences of `field` in a message as one JSON object. */
static int count_field(Reader r, uint32_t field, size_t *count) {
    Tag t;
    *count = 0;
    while (r.p < r.end) {
        TRY(read_tag(&r, &t));
        if (t.field == field) (*count)++;
        TRY(skip(&r, t.wire));
    }
    return OK;
}

static int json_map(Decoder *d, Buf *out, Reader map, uint32_t field, int depth) {
    size_t count;
    TRY(count_field(map, field, &count));
    if (count > MAX_ATTRIBUTES) return FALLBACK;   /* the rest are dropped with a note */
    KeySet keys;
    keyset_init(&keys, count);
    if (!keys.slots) { PyErr_NoMemory(); return ERROR; }
    int rc = put_char(out, '{') ? ERROR : OK;
    int first = 1;
    Tag t;
    while (rc == OK && map.p < map.end) {
        if ((rc = read_tag(&map, &t))) break;
        if (t.field != field) { rc = skip(&map, t.wire); continue; }
        if (t.wire != 2) { rc = FALLBACK; break; }
        Reader kv;
        if ((rc = read_len(&map, &kv))) break;
        if (!first && put_char(out, ',')) { rc = ERROR; break; }
        first = 0;
        rc = json_key_value(d, out, kv, &keys, depth);
    }
    keyset_free(&keys);
    if (rc == OK && put_char(out, '}')) rc = ERROR;
    return rc;
}

/* A JSON column value: the map of `field` in `message`, at most MAX_VALUE_CHARS long. */
static int map_column(Decoder *d, Str *column, Reader message, uint32_t field) {
    size_t before = column->data.len;
    TRY(json_map(d, &column->data, message, field, 0));
    if (column->data.len - before > MAX_VALUE_CHARS) return FALLBACK;   /* cut, with a note */
    return str_end(column, 1);
}

/* --- Spans --------------------------------------------------------------------------------- */

typedef struct {
    Str trace_id, span_id, parent_span_id, trace_state, name, status_message, scope_name,
        scope_version, attributes;
    Buf kind, start_time, end_time, duration, status_code, resource, flags, dropped_attributes,
        dropped_events, dropped_links;
    List events, links;
    Buf event_time, event_dropped;
    Str event_name, event_attributes;
    Str link_trace_id, link_span_id, link_trace_state, link_attributes;
    Buf link_flags, link_dropped;
    Py_ssize_t spans;
} Columns;

static int text_field(Reader *r, Tag t, Reader *out) {
    EXPECT(t, 2);
    TRY(read_len(r, out));
    return valid_utf8(out->p, (size_t)(out->end - out->p)) ? OK : FALLBACK;
}

static inline size_t span_of(Reader r) { return (size_t)(r.end - r.p); }

static int nullable_text(Str *s, Reader r) {
    return span_of(r) ? (str_add(s, (const char *)r.p, span_of(r)) ? ERROR : OK)
                      : (str_null(s) ? ERROR : OK);
}

static int zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) if (p[i]) return 0;
    return 1;
}

static int decode_event(Decoder *d, Columns *c, Reader r) {
    Tag t;
    uint64_t time = 0, dropped = 0;
    Reader name = {(const uint8_t *)"", (const uint8_t *)""}, whole = r;
    while (r.p < r.end) {
        TRY(read_tag(&r, &t));
        switch (t.field) {
        case 1: EXPECT(t, 1); TRY(read_fixed64(&r, &time)); break;
        case 2: TRY(text_field(&r, t, &name)); break;
        case 4: EXPECT(t, 0); TRY(read_varint(&r, &dropped)); break;
        default: TRY(skip(&r, t.wire));
        }
    }
    if (time > MAX_TIMESTAMP_NS) time = MAX_TIMESTAMP_NS;
    if (put_i64(&c->event_time, (int64_t)time) || put_u32(&c->event_dropped, (uint32_t)dropped)
        || str_add(&c->event_name, (const char *)name.p, span_of(name))) return ERROR;
    return map_column(d, &c->event_attributes, whole, 3);
}

static int decode_link(Decoder *d, Columns *c, Reader r) {
    Tag t;
    uint64_t dropped = 0;
    uint32_t flags = 0;
    Reader empty = {(const uint8_t *)"", (const uint8_t *)""};
    Reader trace = empty, span = empty, state = empty, whole = r;
    while (r.p < r.end) {
        TRY(read_tag(&r, &t));
        switch (t.field) {
        case 1: EXPECT(t, 2); TRY(read_len(&r, &trace)); break;
        case 2: EXPECT(t, 2); TRY(read_len(&r, &span)); break;
        case 3: TRY(text_field(&r, t, &state)); break;
        case 5: EXPECT(t, 0); TRY(read_varint(&r, &dropped)); break;
        case 6: EXPECT(t, 5); TRY(read_fixed32(&r, &flags)); break;
        default: TRY(skip(&r, t.wire));
        }
    }
    if (str_hex(&c->link_trace_id, trace.p, span_of(trace)) || str_hex(&c->link_span_id, span.p, span_of(span))
        || put_u32(&c->link_flags, flags) || put_u32(&c->link_dropped, (uint32_t)dropped)) return ERROR;
    TRY(nullable_text(&c->link_trace_state, state));
    return map_column(d, &c->link_attributes, whole, 4);
}

static int decode_status(Reader r, Reader *message, int32_t *code) {
    Tag t;
    uint64_t v;
    while (r.p < r.end) {
        TRY(read_tag(&r, &t));
        if (t.field == 2) TRY(text_field(&r, t, message));
        else if (t.field == 3) { EXPECT(t, 0); TRY(read_varint(&r, &v)); *code = (int32_t)v; }
        else TRY(skip(&r, t.wire));
    }
    return OK;
}

static int decode_span(Decoder *d, Columns *c, Reader r, int32_t resource, Reader scope_name,
                       Reader scope_version) {
    Tag t;
    Reader empty = {(const uint8_t *)"", (const uint8_t *)""};
    Reader trace = empty, span = empty, parent = empty, state = empty, name = empty,
           message = empty, status, item;
    Reader whole = r;
    uint64_t start = 0, end = 0, v, dropped_attributes = 0, dropped_events = 0, dropped_links = 0;
    uint32_t flags = 0;
    int32_t kind = 0, code = 0;
    int32_t events = 0, links = 0, has_status = 0;
    while (r.p < r.end) {
        TRY(read_tag(&r, &t));
        switch (t.field) {
        case 1: EXPECT(t, 2); TRY(read_len(&r, &trace)); break;
        case 2: EXPECT(t, 2); TRY(read_len(&r, &span)); break;
        case 3: TRY(text_field(&r, t, &state)); break;
        case 4: EXPECT(t, 2); TRY(read_len(&r, &parent)); break;
        case 5: TRY(text_field(&r, t, &name)); break;
        case 6: EXPECT(t, 0); TRY(read_varint(&r, &v)); kind = (int32_t)v; break;
        case 7: EXPECT(t, 1); TRY(read_fixed64(&r, &start)); break;
        case 8: EXPECT(t, 1); TRY(read_fixed64(&r, &end)); break;
        case 9: EXPECT(t, 2); TRY(skip(&r, 2)); break;   /* attributes: written below */
        case 10: EXPECT(t, 0); TRY(read_varint(&r, &dropped_attributes)); break;
        case 11: EXPECT(t, 2); TRY(read_len(&r, &item)); TRY(decode_event(d, c, item)); events++; break;
        case 12: EXPECT(t, 0); TRY(read_varint(&r, &dropped_events)); break;
        case 13: EXPECT(t, 2); TRY(read_len(&r, &item)); TRY(decode_link(d, c, item)); links++; break;
        case 14: EXPECT(t, 0); TRY(read_varint(&r, &dropped_links)); break;
        case 15:
            EXPECT(t, 2);
            if (has_status++) return FALLBACK;   /* merged by protobuf */
            TRY(read_len(&r, &status));
            TRY(decode_status(status, &message, &code));
            break;
        case 16: EXPECT(t, 5); TRY(read_fixed32(&r, &flags)); break;
        default: TRY(skip(&r, t.wire));
        }
    }
    /* What the Python decoder rejects, notes or clamps, it decides. */
    if (span_of(trace) != 16 || zero(trace.p, 16) || span_of(span) != 8 || zero(span.p, 8)) return FALLBACK;
    if (span_of(parent) && (span_of(parent) != 8 || zero(parent.p, 8))) return FALLBACK;
    if (start > MAX_TIMESTAMP_NS || end > MAX_TIMESTAMP_NS || end < start) return FALLBACK;
    if (dropped_attributes > UINT32_MAX || dropped_events > UINT32_MAX || dropped_links > UINT32_MAX)
        return FALLBACK;

    if (str_hex(&c->trace_id, trace.p, 16) || str_hex(&c->span_id, span.p, 8)) return ERROR;
    if (span_of(parent) ? str_hex(&c->parent_span_id, parent.p, 8) : str_null(&c->parent_span_id)) return ERROR;
    TRY(nullable_text(&c->trace_state, state));
    if (str_add(&c->name, (const char *)name.p, span_of(name))) return ERROR;
    if (put_u8(&c->kind, (uint8_t)(kind >= 0 && kind < 6 ? kind : 0))
        || put_i64(&c->start_time, (int64_t)start) || put_i64(&c->end_time, (int64_t)end)
        || put_i64(&c->duration, (int64_t)(end - start))
        || put_u8(&c->status_code, (uint8_t)(code >= 0 && code < 3 ? code : 0))) return ERROR;
    TRY(nullable_text(&c->status_message, message));
    if (put_i32(&c->resource, resource)) return ERROR;
    TRY(nullable_text(&c->scope_name, scope_name));
    TRY(nullable_text(&c->scope_version, scope_version));
    d->in_span_attributes = 1;
    int rc = map_column(d, &c->attributes, whole, 9);
    d->in_span_attributes = 0;
    TRY(rc);
    if (list_end(&c->events, events) || list_end(&c->links, links)
        || put_u32(&c->flags, flags) || put_u32(&c->dropped_attributes, (uint32_t)dropped_attributes)
        || put_u32(&c->dropped_events, (uint32_t)dropped_events)
        || put_u32(&c->dropped_links, (uint32_t)dropped_links)) return ERROR;
    c->spans++;
    return OK;
}

/* The scope's attributes are not stored, but protobuf refuses invalid UTF-8 in them (and the
 * Python decoder then repairs the request): writing them to a scratch buffer checks that. */
static int check_strings(Decoder *d, Reader message, uint32_t field) {
    Buf scratch = {0};
    int rc = json_map(d, &scratch, message, field, 0);
    free(scratch.p);
    return rc;
}

static int decode_scope_spans(Decoder *d, Columns *c, Reader r, int32_t resource) {
    Tag t;
    Reader empty = {(const uint8_t *)"", (const uint8_t *)""};
    Reader scope_name = empty, scope_version = empty, scan = r;
    int scopes = 0;
    /* The scope may come after the spans on the wire: find it first. */
    while (scan.p < scan.end) {
        TRY(read_tag(&scan, &t));
        if (t.field != 1) { TRY(skip(&scan, t.wire)); continue; }
        EXPECT(t, 2);
        if (scopes++) return FALLBACK;   /* merged by protobuf */
        Reader scope;
        TRY(read_len(&scan, &scope));
        Reader scope_whole = scope;
        int has_scope_attributes = 0;
        while (scope.p < scope.end) {
            TRY(read_tag(&scope, &t));
            if (t.field == 1) TRY(text_field(&scope, t, &scope_name));
            else if (t.field == 2) TRY(text_field(&scope, t, &scope_version));
            else if (t.field == 3) { has_scope_attributes = 1; TRY(skip(&scope, t.wire)); }
            else TRY(skip(&scope, t.wire));
        }
        if (has_scope_attributes) TRY(check_strings(d, scope_whole, 3));
    }
    while (r.p < r.end) {
        TRY(read_tag(&r, &t));
        if (t.field == 3) { Reader url; TRY(text_field(&r, t, &url)); continue; }   /* schema_url */
        if (t.field != 2) { TRY(skip(&r, t.wire)); continue; }
        EXPECT(t, 2);
        Reader span;
        TRY(read_len(&r, &span));
        TRY(decode_span(d, c, span, resource, scope_name, scope_version));
    }
    return OK;
}

static int decode_request(Decoder *d, Columns *c, Reader r, const uint8_t *base, PyObject *resources) {
    Tag t;
    while (r.p < r.end) {
        TRY(read_tag(&r, &t));
        if (t.field != 1) { TRY(skip(&r, t.wire)); continue; }
        EXPECT(t, 2);
        Reader rs;
        TRY(read_len(&r, &rs));
        int32_t index = (int32_t)PyList_GET_SIZE(resources);
        Reader scan = rs, resource = {0};
        int seen = 0;
        while (scan.p < scan.end) {
            TRY(read_tag(&scan, &t));
            if (t.field != 1) { TRY(skip(&scan, t.wire)); continue; }
            EXPECT(t, 2);
            if (seen++) return FALLBACK;   /* merged by protobuf */
            TRY(read_len(&scan, &resource));
        }
        PyObject *range = seen ? Py_BuildValue("(nn)", (Py_ssize_t)(resource.p - base),
                                               (Py_ssize_t)(resource.end - base))
                               : Py_NewRef(Py_None);
        if (!range) return ERROR;
        int failed = PyList_Append(resources, range);
        Py_DECREF(range);
        if (failed) return ERROR;
        while (rs.p < rs.end) {
            TRY(read_tag(&rs, &t));
            if (t.field == 3) { Reader url; TRY(text_field(&rs, t, &url)); continue; }   /* schema_url */
            if (t.field != 2) { TRY(skip(&rs, t.wire)); continue; }
            EXPECT(t, 2);
            Reader scope_spans;
            TRY(read_len(&rs, &scope_spans));
            TRY(decode_scope_spans(d, c, scope_spans, index));
        }
    }
    return OK;
}

/* --- Handing the buffers to Python ---------------------------------------------------------- */

static PyObject *bytes_of(Buf *b) {
    return PyBytes_FromStringAndSize(b->p ? b->p : "", (Py_ssize_t)b->len);
}

static PyObject *bitmap(Buf *valid, Py_ssize_t rows, Py_ssize_t nulls) {
    if (!nulls) Py_RETURN_NONE;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (rows + 7) / 8);
    if (!out) return NULL;
    uint8_t *bits = (uint8_t *)PyBytes_AS_STRING(out);
    memset(bits, 0, (size_t)((rows + 7) / 8));
    for (Py_ssize_t i = 0; i < rows; i++)
        if (valid->p[i]) bits[i >> 3] |= (uint8_t)(1u << (i & 7));
    return out;
}

/* (validity bitmap or None, offsets, data, null count) */
static PyObject *finish_str(Str *s) {
    return Py_BuildValue("(NNNn)", bitmap(&s->valid, s->rows, s->nulls), bytes_of(&s->offsets),
                         bytes_of(&s->data), s->nulls);
}

/* (validity bitmap or None, offsets, null count) */
static PyObject *finish_list(List *l) {
    return Py_BuildValue("(NNn)", bitmap(&l->valid, l->rows, l->nulls), bytes_of(&l->offsets), l->nulls);
}

static void free_str(Str *s) { free(s->data.p); free(s->offsets.p); free(s->valid.p); }

static void free_columns(Columns *c) {
    Str *strs[] = {&c->trace_id, &c->span_id, &c->parent_span_id, &c->trace_state, &c->name,
                   &c->status_message, &c->scope_name, &c->scope_version, &c->attributes,
                   &c->event_name, &c->event_attributes, &c->link_trace_id, &c->link_span_id,
                   &c->link_trace_state, &c->link_attributes};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) free_str(strs[i]);
    Buf *bufs[] = {&c->kind, &c->start_time, &c->end_time, &c->duration, &c->status_code,
                   &c->resource, &c->flags, &c->dropped_attributes, &c->dropped_events,
                   &c->dropped_links, &c->event_time, &c->event_dropped, &c->link_flags,
                   &c->link_dropped, &c->events.offsets, &c->events.valid, &c->links.offsets,
                   &c->links.valid};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]->p);
}

static int init_columns(Columns *c) {
    memset(c, 0, sizeof *c);
    Str *strs[] = {&c->trace_id, &c->span_id, &c->parent_span_id, &c->trace_state, &c->name,
                   &c->status_message, &c->scope_name, &c->scope_version, &c->attributes,
                   &c->event_name, &c->event_attributes, &c->link_trace_id, &c->link_span_id,
                   &c->link_trace_state, &c->link_attributes};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) if (str_init(strs[i])) return ERROR;
    if (list_init(&c->events) || list_init(&c->links)) return ERROR;
    return OK;
}

static PyObject *columns_dict(Columns *c) {
    struct { const char *name; PyObject *value; } items[] = {
        {"trace_id", finish_str(&c->trace_id)}, {"span_id", finish_str(&c->span_id)},
        {"parent_span_id", finish_str(&c->parent_span_id)}, {"trace_state", finish_str(&c->trace_state)},
        {"name", finish_str(&c->name)}, {"status_message", finish_str(&c->status_message)},
        {"scope_name", finish_str(&c->scope_name)}, {"scope_version", finish_str(&c->scope_version)},
        {"attributes", finish_str(&c->attributes)},
        {"kind", bytes_of(&c->kind)}, {"start_time", bytes_of(&c->start_time)},
        {"end_time", bytes_of(&c->end_time)}, {"duration_ns", bytes_of(&c->duration)},
        {"status_code", bytes_of(&c->status_code)}, {"resource", bytes_of(&c->resource)},
        {"flags", bytes_of(&c->flags)}, {"dropped_attributes_count", bytes_of(&c->dropped_attributes)},
        {"dropped_events_count", bytes_of(&c->dropped_events)},
        {"dropped_links_count", bytes_of(&c->dropped_links)},
        {"events", finish_list(&c->events)}, {"event_time", bytes_of(&c->event_time)},
        {"event_name", finish_str(&c->event_name)}, {"event_attributes", finish_str(&c->event_attributes)},
        {"event_dropped", bytes_of(&c->event_dropped)},
        {"links", finish_list(&c->links)}, {"link_trace_id", finish_str(&c->link_trace_id)},
        {"link_span_id", finish_str(&c->link_span_id)}, {"link_trace_state", finish_str(&c->link_trace_state)},
        {"link_attributes", finish_str(&c->link_attributes)}, {"link_flags", bytes_of(&c->link_flags)},
        {"link_dropped", bytes_of(&c->link_dropped)},
    };
    size_t count = sizeof items / sizeof *items;
    PyObject *out = PyDict_New();
    for (size_t i = 0; i < count; i++) {
        if (out && (!items[i].value || PyDict_SetItemString(out, items[i].name, items[i].value))) Py_CLEAR(out);
        Py_XDECREF(items[i].value);
    }
    return out;
}

static PyObject *decode(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer data;
    PyObject *is_secret;
    if (!PyArg_ParseTuple(args, "y*O", &data, &is_secret)) return NULL;
    if (is_secret != Py_None && !PyCallable_Check(is_secret)) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_TypeError, "is_secret must be None or callable");
        return NULL;
    }
    Decoder d = {.is_secret = is_secret};
    Columns c;
    PyObject *resources = PyList_New(0), *result = NULL;
    int rc = init_columns(&c);
    if (rc == OK && !resources) rc = ERROR;
    if (rc == OK) {
        Reader r = {(const uint8_t *)data.buf, (const uint8_t *)data.buf + data.len};
        rc = decode_request(&d, &c, r, r.p, resources);
    }
    if (rc == OK) {
        PyObject *columns = columns_dict(&c);
        PyObject *keys = columns ? span_keys_list(&d) : NULL;
        result = keys ? Py_BuildValue("(nONN)", c.spans, resources, columns, keys) : NULL;
        if (!keys) Py_XDECREF(columns);
    } else if (rc == FALLBACK) {
        result = Py_NewRef(Py_None);
    }
    Py_XDECREF(resources);
    free_columns(&c);
    free(d.secrets.slots);
    free(d.span_keys.slots);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS,
     "decode(data, is_secret) -> None | (n_spans, resource ranges, column buffers, attribute keys)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_spans",
                                    "OTLP trace requests to Arrow column buffers.", -1, methods};

PyMODINIT_FUNC PyInit__spans(void) { return PyModule_Create(&module); }
