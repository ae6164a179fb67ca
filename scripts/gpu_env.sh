#!/usr/bin/env bash
# scripts/gpu_env.sh DEB_DIR — sourced by scripts/gpu_check.sh and bench/gpu.sh: prepares a
# GPU machine that has the CUDA toolkit but none of our Debian libraries and no network.
#  - every DEB_DIR/*.deb (libdnnl, libyaml, libturbojpeg, libpng, SentencePiece, pkgconf, ...,
#    downloaded on a Debian 12 machine with `apt-get download`) is unpacked with `dpkg -x` (or ar +
#    tar) into /tmp/debroot; nothing is installed system-wide;
#  - pkg-config answers from /tmp/debroot only (PKG_CONFIG_LIBDIR + PKG_CONFIG_SYSROOT_DIR), so the
#    image's own .pc files cannot mix in;
#  - cuDNN: /usr/local/cuda's, else the nvidia-cudnn wheel of the image's PyTorch (its lib/ holds
#    libcudnn.so.9; headers from the wheel or DEB_DIR/cudnn-include); NCCL likewise (the toolkit's,
#    else the nvidia-nccl wheel: NCCL_ROOT).
# Sets CMAKE_EXTRA (an array) and exports LD_LIBRARY_PATH, CUDNN_ROOT, PATH.
DEB_DIR="${1:-.debs}"
DEBROOT=/tmp/debroot
CMAKE_EXTRA=()
export PATH="/usr/local/cuda/bin:$PATH"
shopt -s nullglob
debs=("$DEB_DIR"/*.deb)
mkdir -p "$DEBROOT"
for d in "${debs[@]}"; do
    if command -v dpkg >/dev/null; then
        dpkg -x "$d" "$DEBROOT"
    else # a .deb is an ar archive holding data.tar.*
        tmp=$(mktemp -d) abs=$(realpath "$d")
        (cd "$tmp" && ar x "$abs" && tar -xf data.tar.* -C "$DEBROOT")
        rm -rf "$tmp"
    fi
done
echo "gpu_env: unpacked ${#debs[@]} .deb files into $DEBROOT"
MULTI="$DEBROOT/usr/lib/x86_64-linux-gnu"
export LD_LIBRARY_PATH="$MULTI:$DEBROOT/usr/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
CMAKE_EXTRA+=(-DCMAKE_PREFIX_PATH="$DEBROOT/usr" -DCMAKE_LIBRARY_PATH="$MULTI"
              -DCMAKE_INCLUDE_PATH="$DEBROOT/usr/include")
if [[ -e "$MULTI/libdnnl.so" ]]; then
    CMAKE_EXTRA+=(-DDNNL_LIBRARY="$MULTI/libdnnl.so" -DDNNL_INCLUDE_DIR="$DEBROOT/usr/include")
fi
if [[ -x "$DEBROOT/usr/bin/pkgconf" ]]; then
    export PKG_CONFIG_LIBDIR="$MULTI/pkgconfig:$DEBROOT/usr/share/pkgconfig"
    export PKG_CONFIG_SYSROOT_DIR="$DEBROOT"
    CMAKE_EXTRA+=(-DPKG_CONFIG_EXECUTABLE="$DEBROOT/usr/bin/pkgconf")
fi
if [[ ! -e /usr/local/cuda/include/cudnn.h ]]; then
    wheel=$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null || true)
    if [[ -n "$wheel" ]]; then
        mkdir -p /tmp/cudnn/lib
        ln -sf "$wheel"/lib/* /tmp/cudnn/lib/
        if [[ -d "$wheel/include" ]]; then ln -sfn "$wheel/include" /tmp/cudnn/include
        else ln -sfn "$(realpath "$DEB_DIR/cudnn-include")" /tmp/cudnn/include; fi
        export CUDNN_ROOT=/tmp/cudnn
        export LD_LIBRARY_PATH="/tmp/cudnn/lib:$LD_LIBRARY_PATH"
        echo "gpu_env: cuDNN from $wheel"
    fi
fi
if [[ ! -e /usr/local/cuda/include/nccl.h ]]; then
    nccl=$(python3 -c 'import nvidia.nccl as m; print(list(m.__path__)[0])' 2>/dev/null || true)
    if [[ -n "$nccl" ]]; then
        mkdir -p /tmp/nccl
        ln -sfn "$nccl/lib" /tmp/nccl/lib
        if [[ -e "$nccl/include/nccl.h" ]]; then ln -sfn "$nccl/include" /tmp/nccl/include
        else ln -sfn "$(realpath "$DEB_DIR/nccl-include")" /tmp/nccl/include; fi
        export NCCL_ROOT=/tmp/nccl
        export LD_LIBRARY_PATH="/tmp/nccl/lib:$LD_LIBRARY_PATH"
        echo "gpu_env: NCCL from $nccl"
    fi
fi

