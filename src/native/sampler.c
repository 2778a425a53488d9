/* emogram._native: the engine's hot path in C.
 *
 * Picks one candidate token from the logits exactly as emogram/sampling.py's PySampler does (that
 * file documents the algorithm; the two must agree bit for bit, and tests compare them). It knows
 * nothing of llama.cpp: it reads plain arrays through the buffer protocol.
 *
 * Build: CMakeLists.txt at the top of the repository (pip install . runs it). Compiled with
 * -ffp-contract=off so no multiply-add is fused: the double arithmetic must round exactly as
 * Python's does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline double next_double(uint64_t *state) {
    return (double)(splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct {
    double v;
    int32_t i;
} item_t;

/* Total order: larger value first, then lower candidate index. */
static inline int before(const item_t *a, const item_t *b) {
    return a->v > b->v || (a->v == b->v && a->i < b->i);
}

static int cmp_items(const void *pa, const void *pb) {
    const item_t *a = (const item_t *)pa, *b = (const item_t *)pb;
    if (before(a, b)) return -1;
    if (before(b, a)) return 1;
    return 0;
}

static inline void swap_items(item_t *a, item_t *b) {
    item_t t = *a;
    *a = *b;
    *b = t;
}

/* Move the k first items (in the total order) to items[0..k), in any order. */
static void select_top(item_t *items, Py_ssize_t n, Py_ssize_t k) {
    Py_ssize_t lo = 0, hi = n - 1;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        /* median of three as pivot, moved to hi */
        if (before(&items[mid], &items[lo])) swap_items(&items[mid], &items[lo]);
        if (before(&items[hi], &items[lo])) swap_items(&items[hi], &items[lo]);
        if (before(&items[mid], &items[hi])) swap_items(&items[mid], &items[hi]);
        item_t pivot = items[hi];
        Py_ssize_t store = lo;
        for (Py_ssize_t j = lo; j < hi; j++) {
            if (before(&items[j], &pivot)) {
                swap_items(&items[j], &items[store]);
                store++;
            }
        }
        swap_items(&items[store], &items[hi]);
        if (store == k - 1 || store == k) return;
        if (store < k) lo = store + 1; else hi = store - 1;
    }
}

static int get_buffer(PyObject *obj, Py_buffer *view, const char *what, char code, Py_ssize_t itemsize) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) return -1;
    const char *fmt = view->format ? view->format : "B";
    if (*fmt == '<' || *fmt == '=' || *fmt == '@') fmt++;
    if (view->itemsize != itemsize || (fmt[0] != code && !(code == 'i' && fmt[0] == 'l' && itemsize == 4))) {
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous array of '%c' (itemsize %zd), got '%s' (itemsize %zd)",
                     what, code, itemsize, view->format ? view->format : "B", view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* sample(logits, candidates, bias, banned, temperature, top_k, top_p, min_p, state) -> (index, state) */
static PyObject *native_sample(PyObject *self, PyObject *args) {
    PyObject *logits_obj, *cand_obj, *bias_obj, *banned_obj;
    double temperature, top_p, min_p;
    int top_k;
    unsigned long long state_in;
    if (!PyArg_ParseTuple(args, "OOOOdiddK", &logits_obj, &cand_obj, &bias_obj, &banned_obj,
                          &temperature, &top_k, &top_p, &min_p, &state_in))
        return NULL;
    Py_buffer lg, cd, bs, bn;
    if (get_buffer(logits_obj, &lg, "logits", 'f', 4) != 0) return NULL;
    if (get_buffer(cand_obj, &cd, "candidates", 'i', 4) != 0) { PyBuffer_Release(&lg); return NULL; }
    if (get_buffer(bias_obj, &bs, "bias", 'd', 8) != 0) { PyBuffer_Release(&lg); PyBuffer_Release(&cd); return NULL; }
    if (get_buffer(banned_obj, &bn, "banned", 'B', 1) != 0) {
        PyBuffer_Release(&lg); PyBuffer_Release(&cd); PyBuffer_Release(&bs); return NULL;
    }
    PyObject *result = NULL;
    item_t *items = NULL;
    const float *logits = (const float *)lg.buf;
    const int32_t *cand = (const int32_t *)cd.buf;
    const double *bias = (const double *)bs.buf;
    const uint8_t *banned = (const uint8_t *)bn.buf;
    Py_ssize_t n_vocab = lg.len / 4, n = cd.len / 4;
    uint64_t state = (uint64_t)state_in;
    if (bs.len / 8 != n || bn.len != n) {
        PyErr_SetString(PyExc_ValueError, "candidates, bias and banned must have the same length");
        goto done;
    }
    items = (item_t *)PyMem_Malloc(sizeof(item_t) * (size_t)(n > 0 ? n : 1));
    if (!items) { PyErr_NoMemory(); goto done; }
    /* With min-p, no candidate below floor = top + temperature * log(min_p) can be kept (its weight
     * exp((v - top) / temperature) is under min_p, and every candidate above it comes first in
     * the order), so only those at or above it are gathered: the same kept list, in the same order,
     * as gathering them all (a word step over Gemma's 123,516 word tokens: 1.2 ms -> 0.3 ms). The
     * floor is lowered by a margin far above any rounding, so the exact test below decides. */
    double floor_v = -INFINITY;
    for (Py_ssize_t i = 0; i < n; i++) {
        int32_t t = cand[i];
        if (t < 0 || t >= n_vocab) {
            PyErr_Format(PyExc_IndexError, "candidate %zd is token %d, outside the %zd logits", i, t, n_vocab);
            goto done;
        }
    }
    if (temperature > 0.0 && min_p > 0.0) {
        double top = -INFINITY;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (banned[i]) continue;
            double v = (double)logits[cand[i]] + bias[i];
            if (isfinite(v) && v > top) top = v;
        }
        if (isfinite(top)) floor_v = top + temperature * log(min_p) - 1e-6 * (1.0 + fabs(top));
    }
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (banned[i]) continue;
        double v = (double)logits[cand[i]] + bias[i];
        if (!isfinite(v) || v < floor_v) continue;
        items[m].v = v;
        items[m].i = (int32_t)i;
        m++;
    }
    long index = -1;
    if (m == 0) goto answer;
    if (temperature <= 0.0) {
        Py_ssize_t best = 0;
        for (Py_ssize_t j = 1; j < m; j++)
            if (items[j].v > items[best].v) best = j; /* first maximum = lowest index */
        index = items[best].i;
        goto answer;
    }
    Py_ssize_t k = (top_k > 0 && top_k < m) ? top_k : m;
    if (k < m) select_top(items, m, k);
    qsort(items, (size_t)k, sizeof(item_t), cmp_items);
    /* weights, written over .v (the value is no longer needed once the top one is known) */
    double v0 = items[0].v;
    for (Py_ssize_t j = 0; j < k; j++) items[j].v = exp((items[j].v - v0) / temperature);
    Py_ssize_t keep = k;
    if (min_p > 0.0) {
        Py_ssize_t c = 0;
        while (c < keep && items[c].v >= min_p) c++;
        keep = c > 0 ? c : 1;
    }
    if (top_p < 1.0) {
        double total = 0.0;
        for (Py_ssize_t j = 0; j < keep; j++) total += items[j].v;
        double target = top_p * total, run = 0.0;
        Py_ssize_t c = 0;
        while (c < keep) {
            run += items[c].v;
            c++;
            if (run >= target) break;
        }
        keep = c;
    }
    double total = 0.0;
    for (Py_ssize_t j = 0; j < keep; j++) total += items[j].v;
    double u = next_double(&state) * total, run = 0.0;
    index = items[keep - 1].i;
    for (Py_ssize_t j = 0; j < keep; j++) {
        run += items[j].v;
        if (run > u) { index = items[j].i; break; }
    }
answer:
    result = Py_BuildValue("lK", index, (unsigned long long)state);
done:
    PyMem_Free(items);
    PyBuffer_Release(&lg);
    PyBuffer_Release(&cd);
    PyBuffer_Release(&bs);
    PyBuffer_Release(&bn);
    return result;
}

/* uniform(state) -> (double in [0, 1), state) */
static PyObject *native_uniform(PyObject *self, PyObject *args) {
    unsigned long long state_in;
    if (!PyArg_ParseTuple(args, "K", &state_in)) return NULL;
    uint64_t state = (uint64_t)state_in;
    double u = next_double(&state);
    return Py_BuildValue("dK", u, (unsigned long long)state);
}

PyObject *native_capture_callback(PyObject *self, PyObject *args); /* head.c */
PyObject *native_head_logits(PyObject *self, PyObject *args);      /* head.c */
PyObject *native_vocabulary(PyObject *self, PyObject *args);       /* vocab.c */

static PyMethodDef methods[] = {
    {"sample", native_sample, METH_VARARGS,
     "sample(logits, candidates, bias, banned, temperature, top_k, top_p, min_p, state) -> (index, state)"},
    {"uniform", native_uniform, METH_VARARGS, "uniform(state) -> (u, state)"},
    {"capture_callback", native_capture_callback, METH_NOARGS,
     "capture_callback() -> address of the graph-evaluation callback (see head.c)"},
    {"head_logits", native_head_logits, METH_VARARGS,
     "head_logits(weights, hidden, out): out[r] = weights[r] . hidden, in a fixed order (see head.c)"},
    {"vocabulary", native_vocabulary, METH_VARARGS,
     "vocabulary(to_piece, is_control, is_eog, vocab, n) -> (blob, ends, control, eog) (see vocab.c)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native",
    "emogram's constrained-sampling hot path in C (see emogram/sampling.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
