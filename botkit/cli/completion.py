"""`botkit completion bash|zsh|fish`: shell completion scripts made from the parser itself,
so plugin subcommands and options complete like the built-in ones."""

from __future__ import annotations

import argparse

_FILE_OPTIONS = {"-c", "--config", "-o", "--output"}


def _tree(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], dict]:
    """Each command path -> its subcommands (with help), options and the choices of options."""
    node: dict = {"commands": {}, "options": [], "choices": {}}
    found = {path: node}
    for action in parser._actions:  # noqa: SLF001 - argparse has no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            helps = {a.dest: a.help or "" for a in action._choices_actions}  # noqa: SLF001
            for name, sub in action.choices.items():
                node["commands"][name] = helps.get(name, "")
                found.update(_tree(sub, path + (name,)))
        elif action.option_strings:
            node["options"].extend(action.option_strings)
            if action.choices:
                for option in action.option_strings:
                    node["choices"][option] = [str(c) for c in action.choices]
        elif action.choices:  # a positional with choices (completion's shell)
            node["choices"][""] = [str(c) for c in action.choices]
    return found


def _bash(tree: dict[tuple[str, ...], dict]) -> str:
    cases, options, values = [], [], []
    for path, node in tree.items():
        key = " ".join(path)
        words = list(node["commands"]) + node["choices"].get("", [])
        cases.append(f'        "{key}") words="{" ".join(words)}" ;;')
        options.append(f'        "{key}") opts="{" ".join(node["options"])}" ;;')
        for option, choices in node["choices"].items():
            if option:
                values.append(f'        "{key}|{option}") words="{" ".join(choices)}"; return 0 ;;')
    return f"""# botkit completion for bash: source <(botkit completion bash)
_botkit_values() {{
    case "$1|$2" in
{chr(10).join(values)}
    esac
    return 1
}}
_botkit() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}} path="" words="" opts="" w i
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${{COMP_WORDS[i]}}
        case "$w" in -*) continue ;; esac
        case " $(_botkit_commands "$path") " in *" $w "*) path="${{path:+$path }}$w" ;; esac
    done
    case "$prev" in
        {"|".join(sorted(_FILE_OPTIONS))}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    if _botkit_values "$path" "$prev"; then COMPREPLY=($(compgen -W "$words" -- "$cur")); return; fi
    words=$(_botkit_commands "$path")
    case "$path" in
{chr(10).join(options)}
    esac
    if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else COMPREPLY=($(compgen -W "$words" -- "$cur")); fi
}}
_botkit_commands() {{
    local words=""
    case "$1" in
{chr(10).join(cases)}
    esac
    echo "$words"
}}
complete -o default -F _botkit botkit
"""


def _fish(tree: dict[tuple[str, ...], dict]) -> str:
    lines = ["# botkit completion for fish: botkit completion fish | source", "complete -c botkit -f"]
    for path, node in tree.items():
        if path:
            condition = f"__fish_seen_subcommand_from {path[-1]}"
            if node["commands"]:
                condition += f"; and not __fish_seen_subcommand_from {' '.join(node['commands'])}"
        else:
            condition = "__fish_use_subcommand"
        for name, text in node["commands"].items():
            lines.append(f"complete -c botkit -n '{condition}' -a {name} -d {_quote(text)}")
        for choice in node["choices"].get("", []):
            lines.append(f"complete -c botkit -n '{condition}' -a {choice}")
        for option in node["options"]:
            flag = f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}"
            extra = (" -r -F" if option in _FILE_OPTIONS else
                     f" -x -a {_quote(' '.join(node['choices'][option]))}" if option in node["choices"] else "")
            lines.append(f"complete -c botkit -n '{condition}' {flag}{extra}")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for `shell` ("bash", "zsh" or "fish")."""
    tree = _tree(parser)
    if shell == "fish":
        return _fish(tree)
    text = _bash(tree)
    if shell == "zsh":  # zsh runs bash completion functions through bashcompinit
        return ("# botkit completion for zsh: source <(botkit completion zsh)\n"
                "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n" + text)
    return text
