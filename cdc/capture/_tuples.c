/* Optional accelerator of cdc.capture.pgoutput: the walk over a pgoutput tuple's columns (TupleData), the hot path
 * of capture. Identical to Decoder._columns (the pure-Python walk, always available), which the contract test
 * (tests/unit/test_pgoutput_native.py) runs side by side with this one. Anything unusual (a truncated message, a
 * negative length, a binary or unknown value kind) returns None and the Python walk handles it, so errors read the
 * same whichever runs. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static PyObject *
walk(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    /* walk(data: bytes, pos: int, columns: tuple[tuple[str, Callable | None], ...], unchanged: object)
     *   -> (dict, pos after the tuple, whether an unchanged-TOAST marker is among the values) | None */
    if (nargs != 4 || !PyBytes_Check(args[0]) || !PyTuple_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "walk(data: bytes, pos: int, columns: tuple, unchanged: object)");
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    PyObject *columns = args[2], *marker = args[3];
    Py_ssize_t count = PyTuple_GET_SIZE(columns);
    int unchanged = 0;
    PyObject *values = PyDict_New();
    if (values == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *column = PyTuple_GET_ITEM(columns, i);
        if (!PyTuple_Check(column) || PyTuple_GET_SIZE(column) != 2)
            goto python;
        PyObject *name = PyTuple_GET_ITEM(column, 0), *convert = PyTuple_GET_ITEM(column, 1), *value;
        if (pos < 0 || pos >= size)
            goto python;
        unsigned char kind = data[pos];
        if (kind == 't') {
            if (size - pos < 5)
                goto python;
            int32_t length = (int32_t)(((uint32_t)data[pos + 1] << 24) | ((uint32_t)data[pos + 2] << 16) |
                                       ((uint32_t)data[pos + 3] << 8) | (uint32_t)data[pos + 4]);
            Py_ssize_t start = pos + 5;
            if (length < 0 || length > size - start)
                goto python;
            pos = start + length;
            PyObject *text = PyUnicode_DecodeUTF8((const char *)data + start, length, "strict");
            if (text == NULL)
                goto error;
            if (convert == Py_None) {
                value = text;
            } else {
                value = PyObject_CallOneArg(convert, text);
                Py_DECREF(text);
                if (value == NULL)
                    goto error;
            }
        } else if (kind == 'n') {
            value = Py_NewRef(Py_None);
            pos += 1;
        } else if (kind == 'u') {
            value = Py_NewRef(marker);
            unchanged = 1;
            pos += 1;
        } else {
            goto python;
        }
        int failed = PyDict_SetItem(values, name, value);
        Py_DECREF(value);
        if (failed)
            goto error;
    }
    return Py_BuildValue("(NnO)", values, pos, unchanged ? Py_True : Py_False);
python:
    Py_DECREF(values);
    Py_RETURN_NONE;
error:
    Py_DECREF(values);
    return NULL;
}

static PyMethodDef methods[] = {
    {"walk", (PyCFunction)(void (*)(void))walk, METH_FASTCALL, "Read a pgoutput tuple's columns (see the module)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_tuples", NULL, 0, methods};

PyMODINIT_FUNC
PyInit__tuples(void)
{
    return PyModule_Create(&module);
}
