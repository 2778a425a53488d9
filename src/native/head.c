/* emogram._native: the candidate-only output head (emogram/head.py).
 *
 * 1. llama.cpp's graph-evaluation callback.
 * llama.cpp calls it for every node of every forward pass (about 700 for Gemma 3 270M), first to
 * ask whether we want that node's result, then, for the nodes we asked for, once it is computed.
 * We ask only for the final hidden state ("result_norm", renamed "result_embd_pooled" when the
 * context outputs embeddings, which it then copies out) and, when `trim` is set, return false there to stop the graph: the output matrix
 * (most of a small model's work) is then never multiplied. emogram/head.py has the same logic in
 * Python and the struct's layout.
 *
 * It knows no llama.cpp headers: ggml's accessor for a tensor's name is passed in as a pointer.
 *
 * 2. head_logits: each chosen token's row of the output matrix times the hidden state. Single-
 * threaded (a BLAS thread pool left spinning beside llama.cpp's threads halves its speed on two
 * cores) and in one fixed order: element i goes to lane i % 16, lanes are summed as a fixed tree.
 * So a logit never depends on how many rows are computed or which; emogram/head.py does exactly
 * the same operations in numpy when this module is not built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef const char *(*get_name_fn)(const void *);

typedef struct {
    get_name_fn get_name;
    int trim; /* 1: stop the graph once the hidden state is ready */
    int seen; /* how many times the hidden state was computed (once per micro-batch) */
} capture_t;

static bool capture_cb(void *tensor, bool ask, void *user_data) {
    capture_t *c = (capture_t *)user_data;
    const char *name = c->get_name(tensor);
    int hit = name != NULL &&
              (strcmp(name, "result_norm") == 0 || strcmp(name, "result_embd_pooled") == 0);
    if (ask) return hit;
    if (hit) {
        c->seen++;
        return !c->trim;
    }
    return true;
}

PyObject *native_capture_callback(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return PyLong_FromVoidPtr((void *)&capture_cb);
}

#define LANES 16

PyObject *native_head_logits(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer w = {0}, h = {0}, out = {0};
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*w*", &w, &h, &out)) return NULL;
    Py_ssize_t n_embd = h.len / (Py_ssize_t)sizeof(float);
    Py_ssize_t rows = out.len / (Py_ssize_t)sizeof(float);
    if (n_embd <= 0 || w.len != rows * n_embd * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "head_logits: weights must be rows x n_embd float32");
        goto done;
    }
    const float *wp = (const float *)w.buf, *hp = (const float *)h.buf;
    float *op = (float *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows; r++) {
        const float *row = wp + r * n_embd;
        float acc[LANES] = {0};
        Py_ssize_t i = 0;
        for (; i + LANES <= n_embd; i += LANES)
            for (int k = 0; k < LANES; k++) acc[k] += row[i + k] * hp[i + k];
        for (int k = 0; i + k < n_embd; k++) acc[k] += row[i + k] * hp[i + k];
        for (int width = LANES / 2; width >= 1; width /= 2)
            for (int k = 0; k < width; k++) acc[k] = acc[k] + acc[k + width];
        op[r] = acc[0];
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&w);
    PyBuffer_Release(&h);
    PyBuffer_Release(&out);
    return result;
}
