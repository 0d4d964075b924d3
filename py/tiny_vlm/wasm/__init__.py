"""WASM SIMD GEMM backend: a WAT generator (gen.py) and the Python caller (backend.py).

Nothing here imports `js` or `pyodide`: bridge.py instantiates the module and passes its
exported functions to `SimdBackend`.
"""
