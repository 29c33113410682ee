/**
 * The completion scripts `qmpctl completions SHELL` prints. Each one hands
 * the words up to the cursor to `qmpctl completions complete -- WORD...`
 * (run as the first word of the line names it) and offers what that prints,
 * one candidate a line; when it prints FILES_DIRECTIVE instead, the shell's
 * own file completion takes over (a socket after -s, ga --stdin FILE, ...),
 * for the part of the word after what the next line says comes first
 * (`--socket=`, `unix:`), if there is one.
 * (`\${` in these templates is the shell's `${`.)
 *
 * @module
 */

/**
 * What `completions complete` prints when the word is a local file name: the
 * shell completes it with its own file completion. A second line, when there
 * is one, is the word's text before the file's name (`--socket=unix:`). (No
 * candidate starts with ':'; a guest path in `ga cp` does, and gets no candidates.)
 */
export const FILES_DIRECTIVE = ":files";

const BASH = `# bash completion for qmpctl (qmpctl completions bash)
_qmpctl() {
  # The words up to the cursor, split at blanks: bash's COMP_WORDS also
  # splits at '=' and ':', which KEY=VALUE words are full of. A blank after
  # an odd number of backslashes is the word's (my\\ vm.sock, as bash writes
  # a completed file name): the word goes on, escapes kept for qmpctl to read.
  local line=\${COMP_LINE:0:COMP_POINT}
  local -a split words
  read -ra split <<<"$line"
  local part pending=""
  for part in "\${split[@]}"; do
    part=$pending$part pending=""
    if [[ $part =~ (\\\\+)$ ]] && ((\${#BASH_REMATCH[1]} % 2 == 1)); then
      pending="$part "
    else
      words+=("$part")
    fi
  done
  if [[ -n $pending ]]; then
    words+=("$pending") # the line ends in an escaped blank: the word goes on there
  elif [[ -z $line || $line == *[[:space:]] ]]; then
    words+=("")
  fi
  local cur=\${words[\${#words[@]}-1]}
  COMPREPLY=()
  # Inside a quote opened before the word being completed (its blank split
  # the line here), bash would replace the whole quoted word with what is
  # offered: offer nothing. (A quote opened in the word itself is bash's to
  # read: a file name completes.)
  local i c quote="" opened=0
  for ((i = 0; i < \${#line}; i++)); do
    c=\${line:i:1}
    if [[ $quote == "'" ]]; then
      [[ $c == "'" ]] && quote=""
    elif [[ $c == '\\' ]]; then
      ((i++))
    elif [[ -n $quote ]]; then
      [[ $c == '"' ]] && quote=""
    elif [[ $c == "'" || $c == '"' ]]; then
      quote=$c opened=$i
    fi
  done
  [[ -n $quote ]] && ((opened < \${#line} - \${#cur})) && return 0
  # qmpctl as typed: ~/bin/qmpctl and $HOME/bin/qmpctl are not expanded yet.
  local program=\${words[0]}
  case $program in
    "~/"*) program=$HOME/\${program#"~/"} ;;
    '$HOME/'*) program=$HOME/\${program#'$HOME/'} ;;
  esac
  local -a candidates
  mapfile -t candidates < <("$program" completions complete -- "\${words[@]:1}" 2>/dev/null </dev/null)
  local files=""
  if ((\${#candidates[@]} <= 2)) && [[ \${candidates[0]} == "${FILES_DIRECTIVE}" ]]; then
    # A file's name, after what the second line says comes first (--socket=unix:), kept in front.
    local before=\${candidates[1]-} file=$cur
    [[ $cur == "$before"* ]] && file=\${cur#"$before"}
    mapfile -t candidates < <(compgen -f -- "$file")
    candidates=("\${candidates[@]/#/"$before"}")
    files=1
    compopt -o filenames 2>/dev/null
  fi
  # bash replaces only what follows the last '=' or ':' of the word (when
  # they are in COMP_WORDBREAKS), so offer only that part.
  local breaks=\${COMP_WORDBREAKS//[^=:]/} trim=""
  if [[ -n $breaks && $cur == *["$breaks"]* ]]; then
    trim=\${cur%"\${cur##*["$breaks"]}"}
  fi
  COMPREPLY=("\${candidates[@]#"$trim"}")
  if [[ -z $files ]] && ((\${#COMPREPLY[@]} == 1)) && [[ \${COMPREPLY[0]} == *[=.] ]]; then
    compopt -o nospace 2>/dev/null
  fi
  return 0
}
complete -F _qmpctl qmpctl
`;

const ZSH = `#compdef qmpctl
# zsh completion for qmpctl (qmpctl completions zsh)
_qmpctl() {
  local -a candidates spaced unspaced
  # qmpctl as typed: ~/bin/qmpctl and $HOME/bin/qmpctl are not expanded yet.
  local program=\${words[1]/#\\~\\//$HOME/}
  program=\${program/#\\$HOME\\//$HOME/}
  candidates=(\${(f)"$("$program" completions complete -- "\${(@Q)words[2,CURRENT-1]}" "\${(Q)PREFIX}" 2>/dev/null </dev/null)"})
  if [[ \${#candidates} -le 2 && $candidates[1] == "${FILES_DIRECTIVE}" ]]; then
    # A file's name, after what the second line says comes first (--socket=unix:), kept in front.
    [[ -n $candidates[2] ]] && compset -P "\${(b)candidates[2]}"
    _files
    return
  fi
  local c
  for c in $candidates; do
    if [[ $c == *[=.] ]]; then unspaced+=("$c"); else spaced+=("$c"); fi
  done
  compadd -S '' -a unspaced
  compadd -a spaced
}
if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  _qmpctl "$@"
else
  compdef _qmpctl qmpctl
fi
`;

const FISH = `# fish completion for qmpctl (qmpctl completions fish)
# A word as typed, its quotes and escapes undone (a quote not yet closed too).
function __qmpctl_unquoted
    set -l word $argv[1]
    set -l quote (string sub -l 1 -- $word)
    if contains -- $quote "'" '"'; and not string match -q -- "?*$quote" (string sub -s 2 -- $word)
        set word "$word$quote"
    end
    string unescape -- $word
end
# How a file name as typed begins with the home directory, as fish expands it:
# ~/ or $HOME/ bare, only $HOME/ in double quotes, neither in single quotes.
function __qmpctl_home
    switch (string sub -l 1 -- $argv[1])
        case "'"
            return
        case '"'
            string match -r -- '^\\$HOME/' (__qmpctl_unquoted $argv[1])
        case '*'
            string match -r -- '^(?:~|\\$HOME)/' (__qmpctl_unquoted $argv[1])
    end
end
# A file name as typed, for __fish_complete_path: unquoted, the home directory expanded.
function __qmpctl_path
    set -l home (__qmpctl_home $argv[1])
    set -l path (__qmpctl_unquoted $argv[1])
    if set -q home[1]
        set path "$HOME/"(string sub -s (math (string length -- $home) + 1) -- $path)
    end
    echo $path
end
# The files a file name as typed may become, spelled as it was (~/ stays ~/).
function __qmpctl_files
    set -l home (__qmpctl_home $argv[1])
    for path in (__fish_complete_path (__qmpctl_path $argv[1]))
        if set -q home[1]
            string replace -- "$HOME/" "$home" $path
        else
            echo $path
        end
    end
end
function __qmpctl_complete
    set -l tokens (commandline -opc)
    set -l current (commandline -ct)
    # qmpctl as typed: ~/bin/qmpctl and $HOME/bin/qmpctl are not expanded yet.
    set -l program (string replace -r -- '^(~|\\$HOME)/' "$HOME/" $tokens[1])
    set -l candidates ($program completions complete -- $tokens[2..-1] (__qmpctl_unquoted "$current") 2>/dev/null </dev/null)
    if test "$candidates[1]" = "${FILES_DIRECTIVE}"; and test (count $candidates) -le 2
        # A file's name, after what the second line says comes first (--socket=unix:), kept in front.
        set -l before $candidates[2]
        set -l length (string length -- "$before")
        if test $length -gt 0; and test (string sub -l $length -- $current) = $before
            for path in (__qmpctl_files (string sub -s (math $length + 1) -- $current))
                printf '%s%s\\n' $before $path
            end
        else
            __qmpctl_files "$current"
        end
    else if set -q candidates[1]
        printf '%s\\n' $candidates
    end
end
complete -c qmpctl -f -a '(__qmpctl_complete)'
`;

/** The scripts, by shell. */
export const COMPLETION_SCRIPTS: Record<string, string> = { bash: BASH, zsh: ZSH, fish: FISH };
