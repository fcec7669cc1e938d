/* Critical paths of every flow, the same walk as critical_path.py (Jaeger UI's algorithm,
 * continued through broker waits), over integer arrays: the Python version costs about 10 us
 * per span, which is most of the analysis of a large store.
 *
 * walk(start, end, producer, child_off, child_idx, key_rank, flow_off, flow_roots,
 *      out_node, out_start, out_end, out_kind, out_flow, out_seq) -> count, or -1 when the
 * output arrays are too small. Every array is contiguous int64; spans are row positions.
 * Children (call edges) are given in CSR form in the order the Python version sees them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int64_t i64;

typedef struct {
    const i64 *start, *end, *producer, *child_off, *child_idx, *key_rank;
    i64 *cs, *ce, *spar, *tree, *visited, *stack;
    char *alive;
    i64 *o_node, *o_start, *o_end, *o_kind, *o_flow, *o_seq;
    i64 count, cap;
} Ctx;

static int emit(Ctx *c, i64 node, i64 s, i64 e, i64 kind, i64 flow) {
    if (c->count >= c->cap) return -1;
    c->o_node[c->count] = node; c->o_start[c->count] = s; c->o_end[c->count] = e;
    c->o_kind[c->count] = kind; c->o_flow[c->count] = flow; c->count++;
    return 0;
}

static void sanitize(Ctx *c, i64 root) {
    i64 top = 0;
    c->cs[root] = c->start[root]; c->ce[root] = c->end[root];
    c->alive[root] = 1; c->tree[root] = root; c->spar[root] = -1;
    c->stack[top++] = root;
    while (top > 0) {
        i64 p = c->stack[--top];
        for (i64 j = c->child_off[p]; j < c->child_off[p + 1]; j++) {
            i64 k = c->child_idx[j];
            if (c->start[k] >= c->ce[p] || c->end[k] <= c->cs[p]) continue;
            c->cs[k] = c->start[k] > c->cs[p] ? c->start[k] : c->cs[p];
            c->ce[k] = c->end[k] < c->ce[p] ? c->end[k] : c->ce[p];
            c->alive[k] = 1; c->tree[k] = root; c->spar[k] = p;
            c->stack[top++] = k;
        }
    }
}

/* Returns the tree root where the walk stopped, or -2 when the output is full. */
static i64 walk(Ctx *c, i64 key, int has_ret, i64 ret, i64 flow) {
    for (;;) {
        i64 best = -1, best_end = 0;
        for (i64 j = c->child_off[key]; j < c->child_off[key + 1]; j++) {
            i64 k = c->child_idx[j];
            if (!c->alive[k] || c->spar[k] != key) continue;
            if (has_ret && !(c->ce[k] < ret)) continue;
            if (best < 0 || c->ce[k] > best_end) { best = k; best_end = c->ce[k]; }
        }
        i64 section_end = has_ret ? ret : c->ce[key];
        if (best >= 0) {
            if (best_end != section_end && emit(c, key, best_end, section_end, 0, flow)) return -2;
            key = best; has_ret = 0;
            continue;
        }
        if (c->cs[key] != section_end && emit(c, key, c->cs[key], section_end, 0, flow)) return -2;
        if (c->spar[key] < 0) return key;
        ret = c->cs[key]; has_ret = 1; key = c->spar[key];
    }
}

static int flow_path(Ctx *c, const i64 *roots, i64 n_roots, i64 flow) {
    i64 first = c->count, last_root = -1;
    for (i64 i = 0; i < n_roots; i++) {
        i64 r = roots[i];
        sanitize(c, r);
        if (last_root < 0 || c->end[r] > c->end[last_root]
            || (c->end[r] == c->end[last_root] && c->key_rank[r] > c->key_rank[last_root]))
            last_root = r;
    }
    i64 key = last_root, ret = 0;
    int has_ret = 0;
    for (;;) {
        i64 stopped = walk(c, key, has_ret, ret, flow);
        if (stopped == -2) return -1;
        if (c->visited[stopped] == flow) break;
        c->visited[stopped] = flow;
        i64 p = c->producer[stopped];
        if (p < 0 || !c->alive[p]) break;
        i64 wait_start = c->end[p], consumer_start = c->cs[stopped];
        if (consumer_start > wait_start && emit(c, stopped, wait_start, consumer_start, 1, flow))
            return -1;
        i64 producer_end = c->end[p] < consumer_start ? c->end[p] : consumer_start;
        key = p;
        has_ret = !(producer_end >= c->ce[p]);
        ret = producer_end;
    }
    /* Sections were found latest first: reverse this flow's run and number it. */
    for (i64 a = first, b = c->count - 1; a < b; a++, b--) {
        i64 t;
        t = c->o_node[a]; c->o_node[a] = c->o_node[b]; c->o_node[b] = t;
        t = c->o_start[a]; c->o_start[a] = c->o_start[b]; c->o_start[b] = t;
        t = c->o_end[a]; c->o_end[a] = c->o_end[b]; c->o_end[b] = t;
        t = c->o_kind[a]; c->o_kind[a] = c->o_kind[b]; c->o_kind[b] = t;
    }
    for (i64 i = first; i < c->count; i++) c->o_seq[i] = i - first;
    return 0;
}

static PyObject *py_walk(PyObject *self, PyObject *args) {
    Py_buffer b[14];
    memset(b, 0, sizeof b);
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*w*w*w*w*w*w*", &b[0], &b[1], &b[2], &b[3],
                          &b[4], &b[5], &b[6], &b[7], &b[8], &b[9], &b[10], &b[11], &b[12],
                          &b[13]))
        return NULL;
    i64 n = b[0].len / (Py_ssize_t)sizeof(i64);
    i64 n_flows = b[6].len / (Py_ssize_t)sizeof(i64) - 1;
    Ctx c;
    memset(&c, 0, sizeof c);
    c.start = b[0].buf; c.end = b[1].buf; c.producer = b[2].buf; c.child_off = b[3].buf;
    c.child_idx = b[4].buf; c.key_rank = b[5].buf;
    const i64 *flow_off = b[6].buf, *flow_roots = b[7].buf;
    c.o_node = b[8].buf; c.o_start = b[9].buf; c.o_end = b[10].buf; c.o_kind = b[11].buf;
    c.o_flow = b[12].buf; c.o_seq = b[13].buf;
    c.cap = b[8].len / (Py_ssize_t)sizeof(i64);
    i64 result = -1;
    size_t words = (size_t)(n > 0 ? n : 1);
    c.cs = malloc(words * sizeof(i64)); c.ce = malloc(words * sizeof(i64));
    c.spar = malloc(words * sizeof(i64)); c.tree = malloc(words * sizeof(i64));
    c.visited = malloc(words * sizeof(i64)); c.stack = malloc(words * sizeof(i64));
    c.alive = calloc(words, 1);
    if (!c.cs || !c.ce || !c.spar || !c.tree || !c.visited || !c.stack || !c.alive) {
        PyErr_NoMemory();
        goto done;
    }
    for (i64 i = 0; i < n; i++) { c.visited[i] = -1; c.spar[i] = -1; }
    Py_BEGIN_ALLOW_THREADS
    result = 0;
    for (i64 f = 0; f < n_flows; f++) {
        if (flow_path(&c, flow_roots + flow_off[f], flow_off[f + 1] - flow_off[f], f)) {
            result = -1;
            break;
        }
    }
    if (result == 0) result = c.count;
    Py_END_ALLOW_THREADS
done:
    free(c.cs); free(c.ce); free(c.spar); free(c.tree); free(c.visited); free(c.stack);
    free(c.alive);
    for (int i = 0; i < 14; i++) PyBuffer_Release(&b[i]);
    if (PyErr_Occurred()) return NULL;
    return PyLong_FromLongLong(result);
}

static PyMethodDef methods[] = {
    {"walk", py_walk, METH_VARARGS, "Critical paths of every flow (see critical_path.py)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", NULL, -1, methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
