#!/usr/bin/env bash
# Re-hash every object of a DVC cache (default .dvc/cache; or a local remote's folder) and report
# each one whose bytes no longer match the md5 in its name. DVC itself trusts a read-only cache file
# without re-hashing it (dvc checkout / status / push do not notice an edited object), and a remote
# is only checked on download when `dvc remote modify <name> verify true` is set.
#
# usage: .ci/dvc-fsck.sh [CACHE_DIR]      exit 1 when an object is corrupt, 0 when all match
set -euo pipefail
root=${1:-.dvc/cache}
[ -d "$root/files/md5" ] || { echo "dvc-fsck: no DVC cache at $root (files/md5 missing)" >&2; exit 2; }
n=0 bad=0
while IFS= read -r -d '' f; do
  rel=${f#"$root/files/md5/"}
  want=${rel/\//}; want=${want%.dir}
  got=$(md5sum < "$f" | cut -c1-32)
  n=$((n + 1))
  if [ "$got" != "$want" ]; then
    echo "corrupt: $f (md5 $got, expected $want)"
    bad=$((bad + 1))
  fi
done < <(find "$root/files/md5" -type f ! -name '*.tmp' -print0)
echo "dvc-fsck: $n objects, $bad corrupt ($root)"
[ "$bad" = 0 ]
