/* emogram._native: a vocabulary's pieces, control and end tokens in one call (emogram/backend/llama.py).
 *
 * Read through ctypes, that is three llama.cpp calls per token: about 0.6 s for Gemma's 262,144
 * tokens, paid by the first run after install (the set-up cache keeps the result). Here the same
 * calls are made from C, about a hundred times faster. It knows no llama.cpp headers: the three
 * functions are passed in as addresses, with these signatures (llama.h):
 *
 *   int32_t llama_token_to_piece(const struct llama_vocab *, llama_token, char *buf, int32_t length,
 *                                int32_t lstrip, bool special);
 *   bool llama_vocab_is_control(const struct llama_vocab *, llama_token);
 *   bool llama_vocab_is_eog(const struct llama_vocab *, llama_token);
 *
 * The tokens are 0 .. n - 1 of the vocabulary the caller holds, so each call is in range.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int32_t (*to_piece_fn)(const void *, int32_t, char *, int32_t, int32_t, bool);
typedef bool (*is_fn)(const void *, int32_t);

/* vocabulary(to_piece, is_control, is_eog, vocab, n) -> (blob, ends, control, eog): the pieces joined,
 * where each ends (int64), one byte per token (1: control), the end tokens (int64); all bytes. */
PyObject *native_vocabulary(PyObject *self, PyObject *args) {
    unsigned long long to_piece_addr, control_addr, eog_addr, vocab_addr;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "KKKKn", &to_piece_addr, &control_addr, &eog_addr, &vocab_addr, &n))
        return NULL;
    if (!to_piece_addr || !control_addr || !eog_addr || !vocab_addr || n < 0 || n > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "vocabulary: null function, null vocabulary or bad size");
        return NULL;
    }
    to_piece_fn to_piece = (to_piece_fn)(uintptr_t)to_piece_addr;
    is_fn is_control = (is_fn)(uintptr_t)control_addr, is_eog = (is_fn)(uintptr_t)eog_addr;
    const void *vocab = (const void *)(uintptr_t)vocab_addr;
    size_t cap = (size_t)n * 8 + 256, used = 0, n_eog = 0;
    char *blob = malloc(cap), *piece = malloc(256);
    int64_t *ends = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    int64_t *eog = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    uint8_t *control = malloc((size_t)(n > 0 ? n : 1));
    int32_t piece_cap = 256;
    int failed = blob == NULL || piece == NULL || ends == NULL || eog == NULL || control == NULL;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t t = 0; t < n && !failed; t++) {
        int32_t k = to_piece(vocab, (int32_t)t, piece, piece_cap, 0, true);
        if (k < 0) { /* the piece is longer than the buffer: -k bytes */
            char *bigger = realloc(piece, (size_t)-k);
            if (bigger == NULL) { failed = 1; break; }
            piece = bigger;
            piece_cap = -k;
            k = to_piece(vocab, (int32_t)t, piece, piece_cap, 0, true);
            if (k < 0) k = 0;
        }
        if (used + (size_t)k > cap) {
            size_t want = cap * 2 + (size_t)k;
            char *grown = realloc(blob, want);
            if (grown == NULL) { failed = 1; break; }
            blob = grown;
            cap = want;
        }
        memcpy(blob + used, piece, (size_t)k);
        used += (size_t)k;
        ends[t] = (int64_t)used;
        control[t] = is_control(vocab, (int32_t)t) ? 1 : 0;
        if (is_eog(vocab, (int32_t)t)) eog[n_eog++] = (int64_t)t;
    }
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (failed) {
        PyErr_NoMemory();
    } else {
        result = Py_BuildValue("(y#y#y#y#)", blob, (Py_ssize_t)used, (const char *)ends,
                               (Py_ssize_t)(sizeof(int64_t) * (size_t)n), (const char *)control, n,
                               (const char *)eog, (Py_ssize_t)(sizeof(int64_t) * n_eog));
    }
    free(blob);
    free(piece);
    free(ends);
    free(eog);
    free(control);
    return result;
}
