"""The wheels the GPU machine needs: the named packages and what they require (markers for Python 3.12 on Linux x86-64),
as installed in this .venv (constraints.txt's versions), less what that machine's image already holds (DEVICE_HAS: the
package list of /work/.library/device/KINDS.md, 2026-11-17). Prints NAME==VERSION lines for bench/gpu_run.sh pack."""
import importlib.metadata as md, re, sys
from packaging.requirements import Requirement

DEVICE_HAS = """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit
cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist
fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta
jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities
linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack
multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-cublas
nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand
nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13
nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix
orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil
pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock
pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core
scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six
sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer
typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp"""

norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
ENV = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux", "platform_system": "Linux",
       "platform_machine": "x86_64", "implementation_name": "cpython", "platform_python_implementation": "CPython",
       "os_name": "posix", "extra": ""}

def closure(roots, have):
    seen, out = set(), []
    def visit(n):
        n = norm(n)
        if n in seen or n in have: return
        seen.add(n)
        d = md.distribution(n)            # not installed here: an error, `make setup` first
        out.append(f"{d.metadata['Name']}=={d.version}")
        for r in map(Requirement, d.requires or []):
            if not r.marker or r.marker.evaluate(ENV): visit(r.name)
    for r in roots: visit(r)
    return out

def slim_wheel(path: str, drop: str) -> None:
    "Rewrite the wheel at `path` without the members whose names match the regex `drop` (their RECORD lines too)."
    import os, zipfile
    tmp = path + ".tmp"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for i in src.infolist():
            if re.match(drop, i.filename): continue
            data = src.read(i.filename)
            if i.filename.endswith(".dist-info/RECORD"):
                data = "".join(l for l in data.decode().splitlines(True) if not re.match(drop, l)).encode()
            dst.writestr(i, data)
    os.replace(tmp, path)

if __name__ == "__main__":
    if sys.argv[1:2] == ["--slim-wheel"]: sys.exit(slim_wheel(sys.argv[2], sys.argv[3]))
    print("\n".join(closure(sys.argv[1:], {norm(n) for n in DEVICE_HAS.split()})))
