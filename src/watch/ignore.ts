import path from 'node:path'

// Editors save through side files: vim's `.x.swp`/`4913`/`x~`, emacs' `#x#`/`.#x`, JetBrains'
// `x___jb_tmp___`, and the `.x.tmp` + rename of atomic writers. None of them is ever an entry or an
// input, so the folder watcher drops them before they can schedule anything.
const TEMP = [/^\./, /~$/, /^#.*#$/, /\.sw[a-p]$/, /^4913$/, /___jb_(tmp|old)___$/, /\.(tmp|temp|bak|orig|crdownload)$/i]

/** True for the side files editors write while saving. */
export function isEditorTempFile(file: string): boolean {
  const base = path.basename(file)
  return TEMP.some((re) => re.test(base))
}
