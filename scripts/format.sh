#!/usr/bin/env bash
# scripts/format.sh — clang-format every C/CUDA source with the repository's .clang-format.
#   scripts/format.sh          rewrite files in place
#   scripts/format.sh --check  list unformatted files and exit 1 if any (a ctest test runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
CF="${CLANG_FORMAT:-clang-format}"
mapfile -t files < <(git ls-files 'core/*.[ch]' 'ops/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]' \
                      'losses/*.[ch]' 'tools/*.[ch]' 'text/*.[ch]' 'text/*.cc' 'nn/*.[ch]' 'vision/*.[ch]' 'model/*.[ch]' \
                      'data/*.[ch]' 'train/*.[ch]' 'eval/*.[ch]' \
                      2>/dev/null || ls core/*.[ch] ops/*.[ch] tests/*.[ch] bench/*.[ch] losses/*.[ch] tools/*.[ch] text/*.[ch] text/*.cc nn/*.[ch] vision/*.[ch] model/*.[ch] data/*.[ch] train/*.[ch] eval/*.[ch])
if [[ "${1:-}" != "--check" ]]; then
  "$CF" -i "${files[@]}"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  if ! "$CF" --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not clang-formatted: $f (run scripts/format.sh)"
    bad=1
  fi
done
[[ $bad == 0 ]] && echo "format: all ${#files[@]} files clang-formatted"
exit $bad
