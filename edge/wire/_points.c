/* The points of a telemetry batch decoded by msgspec, checked and built in one native pass
 * (edge.wire.decoding uses it when it is built; without it the Python loop does the same).
 *
 * build_points(raw_points, default_ts, known, unset, point_type, ts_slot, metrics_slot,
 *              max_metrics, min_ts, max_ts) -> (tuple[Point, ...], members) | None
 *
 * For each raw point (msgspec's RawPoint: ``metrics`` a dict, ``ts`` an int or ``unset``): its metric
 * count must be 1..max_metrics and every name in ``known`` (the names already checked against the
 * contract), its ts (``default_ts`` when unset) within [min_ts, max_ts). The result is one
 * ``point_type`` per raw point, built as ``object.__new__`` and the two slot descriptors build it,
 * and the JSON members those points were written with (each metric, the ``metrics`` key, and ``ts``
 * when the point carried its own). Anything else returns None and the Python loop decides: it also
 * learns new names and names what is wrong.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *str_ts;
static PyObject *str_metrics;
static PyObject *empty_tuple;

static int set_slot(PyObject *slot, PyObject *obj, PyObject *value) {
    descrsetfunc set = Py_TYPE(slot)->tp_descr_set;
    if (set == NULL) {
        PyErr_SetString(PyExc_TypeError, "build_points: a slot descriptor is needed");
        return -1;
    }
    return set(slot, obj, value);
}

static PyObject *build_points(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "build_points takes 10 arguments");
        return NULL;
    }
    PyObject *raw = args[0], *default_ts = args[1], *known = args[2], *unset = args[3];
    PyObject *point_type = args[4], *ts_slot = args[5], *metrics_slot = args[6];
    Py_ssize_t max_metrics = PyLong_AsSsize_t(args[7]);
    long long min_ts = PyLong_AsLongLong(args[8]);
    long long max_ts = PyLong_AsLongLong(args[9]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (!PyList_CheckExact(raw) || !PyAnySet_Check(known) || !PyType_Check(point_type)) {
        PyErr_SetString(PyExc_TypeError, "build_points: raw_points a list, known a set, point_type a type");
        return NULL;
    }
    newfunc new = ((PyTypeObject *)point_type)->tp_new;
    Py_ssize_t count = PyList_GET_SIZE(raw);
    PyObject *points = PyTuple_New(count);
    if (points == NULL) {
        return NULL;
    }
    long long members = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (i >= PyList_GET_SIZE(raw)) { /* only if an attribute lookup ran code that shrank the list */
            Py_DECREF(points);
            Py_RETURN_NONE;
        }
        PyObject *item = Py_NewRef(PyList_GET_ITEM(raw, i));
        PyObject *metrics = PyObject_GetAttr(item, str_metrics);
        PyObject *ts = metrics == NULL ? NULL : PyObject_GetAttr(item, str_ts);
        Py_DECREF(item);
        if (ts == NULL) {
            Py_XDECREF(metrics);
            goto error;
        }
        int ok = PyDict_CheckExact(metrics) && PyDict_GET_SIZE(metrics) > 0 &&
                 PyDict_GET_SIZE(metrics) <= max_metrics;
        Py_ssize_t pos = 0;
        PyObject *name, *value;
        while (ok && PyDict_Next(metrics, &pos, &name, &value)) {
            ok = PySet_Contains(known, name);
            if (ok < 0) {
                Py_DECREF(metrics);
                Py_DECREF(ts);
                goto error;
            }
        }
        Py_ssize_t size = ok ? PyDict_GET_SIZE(metrics) : 0;
        if (ok && ts == unset) {
            Py_DECREF(ts);
            ts = Py_NewRef(default_ts);
            members += 1 + size;
        } else if (ok && PyLong_CheckExact(ts)) {
            int overflow = 0;
            long long stamp = PyLong_AsLongLongAndOverflow(ts, &overflow);
            if (stamp == -1 && PyErr_Occurred()) {
                PyErr_Clear();
                ok = 0;
            } else {
                ok = !overflow && min_ts <= stamp && stamp < max_ts;
            }
            members += 2 + size;
        } else {
            ok = 0;
        }
        if (!ok) {
            Py_DECREF(metrics);
            Py_DECREF(ts);
            Py_DECREF(points);
            Py_RETURN_NONE;
        }
        PyObject *point = new ((PyTypeObject *)point_type, empty_tuple, NULL);
        if (point == NULL || set_slot(ts_slot, point, ts) < 0 || set_slot(metrics_slot, point, metrics) < 0) {
            Py_XDECREF(point);
            Py_DECREF(metrics);
            Py_DECREF(ts);
            goto error;
        }
        Py_DECREF(metrics);
        Py_DECREF(ts);
        PyTuple_SET_ITEM(points, i, point);
    }
    PyObject *result = Py_BuildValue("(NL)", points, members);
    return result;
error:
    Py_DECREF(points);
    return NULL;
}

static PyMethodDef methods[] = {
    {"build_points", (PyCFunction)(void (*)(void))build_points, METH_FASTCALL,
     "build_points(raw_points, default_ts, known, unset, point_type, ts_slot, metrics_slot, max_metrics, "
     "min_ts, max_ts) -> (points, members) | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_points", "Telemetry points checked and built in one native pass.", -1, methods,
};

PyMODINIT_FUNC PyInit__points(void) {
    str_ts = PyUnicode_InternFromString("ts");
    str_metrics = PyUnicode_InternFromString("metrics");
    empty_tuple = PyTuple_New(0);
    if (str_ts == NULL || str_metrics == NULL || empty_tuple == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
