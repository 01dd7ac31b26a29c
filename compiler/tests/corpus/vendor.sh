#!/usr/bin/env bash
# Regenerates the vendored corpus (this directory) from the full migration
# corpus: every file whose SOURCES.tsv `license` is permissive (MIT,
# Apache-2.0, Apache-2.0;MIT, BSD-3-Clause), copied byte for byte under the
# same project directory and file name, with SOURCES.tsv and VERDICTS.tsv
# cut down to exactly those files (header and column order kept).
#
#   compiler/tests/corpus/vendor.sh [FULL_CORPUS_DIR]
#
# FULL_CORPUS_DIR defaults to `shared/corpus/sqlite-migrations` beside the
# workspace. LICENSES.md is written by hand (copyright lines come from each
# project's license file); this script only checks that it names every
# vendored project. After running it, update the VENDORED_* counts in
# compiler/tests/corpus.rs if the selection changed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/../../../../shared/corpus/sqlite-migrations}
src=$(cd "$src" && pwd) || { echo "vendor.sh: no corpus at ${1:-$src}" >&2; exit 1; }
for f in SOURCES.tsv VERDICTS.tsv; do
    [ -f "$src/$f" ] || { echo "vendor.sh: $src/$f is missing" >&2; exit 1; }
done

# The licenses a file may carry to be vendored (exact `license` cells).
permissive='MIT|Apache-2.0|Apache-2.0;MIT|BSD-3-Clause'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# SOURCES.tsv: the header and the permissive rows, in their original order.
# A replay set must be vendored whole: a set mixing licenses is an error.
awk -F'\t' -v ok="$permissive" '
    BEGIN { n = split(ok, l, "|"); for (i = 1; i <= n; i++) allowed[l[i]] = 1 }
    NR == 1 {
        for (i = 1; i <= NF; i++) col[$i] = i
        if (!("license" in col) || !("set" in col) || !("corpus_file" in col)) {
            print "vendor.sh: SOURCES.tsv lacks license/set/corpus_file" > "/dev/stderr"; exit 1
        }
        print; next
    }
    {
        lic = $col["license"]; set = $col["set"]
        if (lic in allowed) { print; keep[set] = 1 } else { drop[set] = 1 }
    }
    END {
        for (s in keep) if (s in drop) {
            print "vendor.sh: set " s " mixes licenses" > "/dev/stderr"; bad = 1
        }
        exit bad
    }' "$src/SOURCES.tsv" >"$tmp/SOURCES.tsv"

awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "corpus_file") c = i; next }
    { print $c }' "$tmp/SOURCES.tsv" >"$tmp/files"

# VERDICTS.tsv: the header and the rows of exactly those files.
awk -F'\t' '
    FNR == NR { want[$0] = 1; wanted++; next }
    FNR == 1 { for (i = 1; i <= NF; i++) if ($i == "file") c = i; print; next }
    $c in want { print; seen++ }
    END { if (seen != wanted) {
        print "vendor.sh: VERDICTS.tsv has " seen + 0 " of " wanted " files" > "/dev/stderr"; exit 1 } }
' "$tmp/files" "$src/VERDICTS.tsv" >"$tmp/VERDICTS.tsv"

# Replace the previous copy: project directories and the two TSVs.
find "$here" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
rm -f "$here/SOURCES.tsv" "$here/VERDICTS.tsv"

count=0
while IFS= read -r file; do
    # `project/file`: exactly two path components, neither empty, . or ..
    project=${file%%/*} name=${file#*/}
    case "$project/$name" in
    */*/* | /* | */ | ./* | ../* | */. | */..)
        echo "vendor.sh: corpus_file \`$file\` is not project/file" >&2
        exit 1
        ;;
    esac
    [ "$project" != "$file" ] || { echo "vendor.sh: corpus_file \`$file\` is not project/file" >&2; exit 1; }
    mkdir -p "$here/$project"
    cp -- "$src/$file" "$here/$file"
    cmp -s -- "$src/$file" "$here/$file" || { echo "vendor.sh: copy of $file differs" >&2; exit 1; }
    count=$((count + 1))
done <"$tmp/files"
cp -- "$tmp/SOURCES.tsv" "$tmp/VERDICTS.tsv" "$here/"

# Every vendored project must be credited in LICENSES.md.
missing=0
while IFS= read -r repo; do
    grep -qF "https://github.com/$repo" "$here/LICENSES.md" 2>/dev/null || {
        echo "vendor.sh: LICENSES.md does not name $repo" >&2
        missing=1
    }
done < <(awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "repo") c = i; next }
    { print $c }' "$here/SOURCES.tsv" | sort -u)

sets=$(awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "set") c = i; next }
    { print $c }' "$here/SOURCES.tsv" | sort -u | wc -l)
echo "vendored $count files in $sets sets from $src"
awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "license") l = i; if ($i == "repo") r = i }; next }
    { files[$l]++; if (!seen[$r]++) repos[$l]++ }
    END { for (k in files) printf "  %-16s %3d files, %2d projects\n", k, files[k], repos[k] }' \
    "$here/SOURCES.tsv" | sort
exit "$missing"
