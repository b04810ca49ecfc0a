#!/usr/bin/env bash
# Fetch the public ARC datasets into the layout that
# `arcpipe build-data --preset arc-agi-1|arc-agi-2 --data-root DEST` expects:
#
#   DEST/arc-agi-1/{training,evaluation}/*.json   github.com/fchollet/ARC-AGI         Apache-2.0
#   DEST/arc-agi-2/{training,evaluation}/*.json   github.com/arcprize/ARC-AGI-2       Apache-2.0
#   DEST/conceptarc/corpus/<Group>/*.json         github.com/victorvikram/ConceptARC  MIT
#
# Each repository is cloned (--depth 1) into a temporary folder, its task files are copied, and the
# clone is removed. Folders of the layout that already exist are replaced, so a rerun leaves no stale
# tasks behind. Only the task files (*.json) are copied, not macOS .DS_Store files or nested folders.
#
# Usage: scripts/fetch_arc_data.sh [--dry-run] [DEST]      (DEST defaults to ./arc-data)
#   --dry-run   print the commands instead of running them; needs no network
set -euo pipefail

usage() {
    sed -n 's/^# \{0,1\}//; /^Usage:/,/^ *--dry-run/p' "$0"
}

die() {
    echo "fetch_arc_data.sh: $*" >&2
    exit 1
}

dry_run=0
dest=""
while (($#)); do
    case "$1" in
        -n | --dry-run) dry_run=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*)
            echo "fetch_arc_data.sh: unknown option: $1" >&2
            usage >&2
            exit 2
            ;;
        *)
            [[ -z $dest ]] || die "more than one DEST: $dest $1"
            dest=$1
            ;;
    esac
    shift
done
dest=${dest:-./arc-data}

# Print a command in dry-run mode, run it otherwise.
run() {
    if ((dry_run)); then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

tmp_template="${TMPDIR:-/tmp}/arc-fetch.XXXXXX"
if ((dry_run)); then
    tmp=$tmp_template # shown as is: a dry run creates nothing
    run mktemp -d "$tmp_template"
else
    command -v git >/dev/null || die "git is not installed"
    tmp=$(mktemp -d "$tmp_template")
    trap 'rm -rf -- "$tmp"' EXIT # also on failure: never leave a clone behind
fi

# copy_tasks SRC DST: replace folder DST with the *.json task files directly inside SRC.
copy_tasks() {
    local src=$1 dst=$2
    if ((dry_run)); then
        run rm -rf -- "$dst"
        run mkdir -p -- "$dst"
        echo "+ cp -- $(printf '%q' "$src")/*.json $(printf '%q' "$dst")/"
        return
    fi
    local files=("$src"/*.json)
    [[ -e ${files[0]} ]] || die "no task files in $src (has the repository's layout changed?)"
    rm -rf -- "$dst"
    mkdir -p -- "$dst"
    cp -- "${files[@]}" "$dst"/
    echo "  ${#files[@]} task files -> $dst"
}

# clone NAME URL: shallow clone into $tmp/NAME.
clone() {
    echo "fetching $2"
    run git clone --depth 1 --quiet -- "$2" "$tmp/$1"
}

clone arc-agi-1 https://github.com/fchollet/ARC-AGI.git
for split in training evaluation; do
    copy_tasks "$tmp/arc-agi-1/data/$split" "$dest/arc-agi-1/$split"
done
run rm -rf -- "$tmp/arc-agi-1"

clone arc-agi-2 https://github.com/arcprize/ARC-AGI-2.git
for split in training evaluation; do
    copy_tasks "$tmp/arc-agi-2/data/$split" "$dest/arc-agi-2/$split"
done
run rm -rf -- "$tmp/arc-agi-2"

# ConceptARC keeps one folder per concept group (AboveBelow, Center, ...) under corpus/.
clone conceptarc https://github.com/victorvikram/ConceptARC.git
if ((dry_run)); then
    run rm -rf -- "$dest/conceptarc/corpus"
    echo "+ for each group folder G in $tmp/conceptarc/corpus/:"
    copy_tasks "$tmp/conceptarc/corpus/G" "$dest/conceptarc/corpus/G"
else
    groups=("$tmp"/conceptarc/corpus/*/)
    [[ -d ${groups[0]} ]] || die "no group folders in ConceptARC's corpus/"
    rm -rf -- "$dest/conceptarc/corpus"
    for group in "${groups[@]}"; do
        group=${group%/}
        copy_tasks "$group" "$dest/conceptarc/corpus/${group##*/}"
    done
fi
run rm -rf -- "$tmp/conceptarc"

if ((dry_run)); then
    echo "dry run: nothing was fetched or written"
else
    echo "done: ARC data in $dest"
fi
