/* Line protocol for a telemetry message's points in one native pass (hub.series.lineproto uses it when
 * it is built; without it the pure-Python path writes the same text).
 *
 * point_lines(prefix, points, plain) -> list[str] | None
 *
 * One line "{prefix} {name}={value},... {ts}" per point, when every point's ``ts`` is an int, its
 * ``metrics`` a non-empty dict, every name a str in ``plain`` (names that need no escaping: the
 * caller's cache of checked names) and every value a finite float; else None, and the caller's
 * general path decides. A float is written as orjson writes it (what the Python path writes):
 * Python's shortest round-trip repr, except that exponents -5 .. -9 lose their leading zero and
 * exponent -5 is written out in full ("1e-05" -> "0.00001", "2.5e-07" -> "2.5e-7").
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

static PyObject *str_ts;
static PyObject *str_metrics;

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buffer;

static int buf_reserve(Buffer *b, Py_ssize_t more) {
    if (b->len + more <= b->cap) {
        return 0;
    }
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more) {
        cap *= 2;
    }
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_put(Buffer *b, const char *s, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) {
        return -1;
    }
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6};
#define SHORT_DIGITS 6
/* Below 2**50 a k-decimal grid is coarser than two ulps of the value: at most one grid point rounds
 * to the value, so the first k that round-trips gives the shortest text, the one repr writes. */
#define SHORT_LIMIT 1125899906842624.0

/* A value with at most SHORT_DIGITS decimals in [1e-4, 2**50 / 10**k) written by integer arithmetic
 * (sensors' readings mostly are): the digits repr and orjson write, without the general shortest
 * round-trip search. 1: written; 0: not such a value; -1: error. */
static int put_short_float(Buffer *b, double value) {
    double magnitude = fabs(value);
    if (magnitude < 1e-4 || magnitude >= SHORT_LIMIT) {
        return 0;
    }
    for (int k = 0; k <= SHORT_DIGITS; k++) {
        double scaled = magnitude * POW10[k];
        if (scaled >= SHORT_LIMIT) {
            return 0;
        }
        long long m = llround(scaled);
        if ((double)m / POW10[k] != magnitude) {
            continue;
        }
        /* the digits of m right to left: k decimals (".0" for none), then at least one before the point */
        char digits[48];
        char *end = digits + sizeof(digits), *p = end;
        if (k == 0) {
            *--p = '0';
        }
        for (int i = 0; i < k; i++) {
            *--p = (char)('0' + m % 10);
            m /= 10;
        }
        *--p = '.';
        do {
            *--p = (char)('0' + m % 10);
            m /= 10;
        } while (m > 0);
        if (value < 0) {
            *--p = '-';
        }
        return buf_put(b, p, end - p) < 0 ? -1 : 1;
    }
    return 0;
}

/* The float as orjson writes it (see the top of the file). */
static int put_float(Buffer *b, double value) {
    if (value == 0.0) {
        return buf_put(b, signbit(value) ? "-0.0" : "0.0", signbit(value) ? 4 : 3);
    }
    int done = put_short_float(b, value);
    if (done != 0) {
        return done < 0 ? -1 : 0;
    }
    char *text = PyOS_double_to_string(value, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL) {
        return -1;
    }
    int rc;
    char *e = strchr(text, 'e');
    if (e != NULL && e[1] == '-' && e[2] == '0' && e[3] != '\0' && e[4] == '\0') {
        if (e[3] == '5') { /* d[.ddd]e-05 -> 0.0000d[ddd] */
            const char *m = text;
            rc = 0;
            if (*m == '-') {
                rc = buf_put(b, "-", 1);
                m++;
            }
            if (rc == 0) {
                rc = buf_put(b, "0.0000", 6);
            }
            for (; rc == 0 && m < e; m++) {
                if (*m != '.') {
                    rc = buf_put(b, m, 1);
                }
            }
        } else { /* e-06 .. e-09 -> e-6 .. e-9 */
            rc = buf_put(b, text, (Py_ssize_t)(e - text) + 2);
            if (rc == 0) {
                rc = buf_put(b, e + 3, 1);
            }
        }
    } else {
        rc = buf_put(b, text, (Py_ssize_t)strlen(text));
    }
    PyMem_Free(text);
    return rc;
}

/* 1: the point's line was appended to b; 0: the point is not one this path writes; -1: error. */
static int put_point(Buffer *b, PyObject *point, PyObject *plain) {
    PyObject *ts = PyObject_GetAttr(point, str_ts);
    if (ts == NULL) {
        return -1;
    }
    PyObject *metrics = PyObject_GetAttr(point, str_metrics);
    if (metrics == NULL) {
        Py_DECREF(ts);
        return -1;
    }
    int rc = 0;
    if (!PyLong_CheckExact(ts) || !PyDict_CheckExact(metrics) || PyDict_GET_SIZE(metrics) == 0) {
        goto done;
    }
    int overflow = 0;
    long long stamp = PyLong_AsLongLongAndOverflow(ts, &overflow);
    if (overflow || (stamp == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        goto done;
    }
    Py_ssize_t pos = 0;
    PyObject *name, *value;
    int first = 1;
    while (PyDict_Next(metrics, &pos, &name, &value)) {
        if (!PyUnicode_CheckExact(name) || !PyFloat_CheckExact(value)) {
            goto done;
        }
        double number = PyFloat_AS_DOUBLE(value);
        if (!isfinite(number)) {
            goto done;
        }
        int known = PySet_Contains(plain, name);
        if (known < 0) {
            rc = -1;
            goto done;
        }
        if (!known) {
            goto done;
        }
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(name, &size);
        if (text == NULL || buf_put(b, first ? " " : ",", 1) < 0 || buf_put(b, text, size) < 0 ||
            buf_put(b, "=", 1) < 0 || put_float(b, number) < 0) {
            rc = -1;
            goto done;
        }
        first = 0;
    }
    char digits[32];
    char *end = digits + sizeof(digits), *p = end;
    unsigned long long u = stamp < 0 ? 0ULL - (unsigned long long)stamp : (unsigned long long)stamp;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (stamp < 0) {
        *--p = '-';
    }
    *--p = ' ';
    rc = buf_put(b, p, end - p) < 0 ? -1 : 1;
done:
    Py_DECREF(ts);
    Py_DECREF(metrics);
    return rc;
}

static PyObject *point_lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "point_lines(prefix, points, plain) takes 3 arguments");
        return NULL;
    }
    PyObject *prefix = args[0], *points = args[1], *plain = args[2];
    if (!PyUnicode_Check(prefix) || !PyAnySet_Check(plain)) {
        PyErr_SetString(PyExc_TypeError, "point_lines: prefix must be a str and plain a set");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(points, "point_lines: points must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t prefix_size;
    const char *prefix_text = PyUnicode_AsUTF8AndSize(prefix, &prefix_size);
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = prefix_text == NULL || count == 0 ? NULL : PyList_New(count);
    Buffer b = {NULL, 0, 0};
    if (out == NULL) {
        Py_DECREF(seq);
        if (prefix_text != NULL && count == 0) {
            Py_RETURN_NONE;
        }
        return NULL;
    }
    int ascii = PyUnicode_IS_ASCII(prefix);
    for (Py_ssize_t i = 0; i < count; i++) {
        b.len = 0;
        int rc = buf_put(&b, prefix_text, prefix_size) < 0 ? -1 : put_point(&b, PySequence_Fast_GET_ITEM(seq, i), plain);
        if (rc <= 0) {
            Py_CLEAR(out);
            PyMem_Free(b.data);
            Py_DECREF(seq);
            if (rc == 0) {
                Py_RETURN_NONE;
            }
            return NULL;
        }
        /* names are ASCII (plain) and so is the rest but the prefix */
        PyObject *line = ascii ? PyUnicode_DecodeASCII(b.data, b.len, NULL) : PyUnicode_DecodeUTF8(b.data, b.len, NULL);
        if (line == NULL) {
            Py_CLEAR(out);
            PyMem_Free(b.data);
            Py_DECREF(seq);
            return NULL;
        }
        PyList_SET_ITEM(out, i, line);
    }
    PyMem_Free(b.data);
    Py_DECREF(seq);
    return out;
}

static PyMethodDef methods[] = {
    {"point_lines", (PyCFunction)(void (*)(void))point_lines, METH_FASTCALL,
     "point_lines(prefix, points, plain) -> list[str] | None: the points' lines of line protocol, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_lines", "Line protocol for telemetry points in one native pass.", -1, methods,
};

PyMODINIT_FUNC PyInit__lines(void) {
    str_ts = PyUnicode_InternFromString("ts");
    str_metrics = PyUnicode_InternFromString("metrics");
    if (str_ts == NULL || str_metrics == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
