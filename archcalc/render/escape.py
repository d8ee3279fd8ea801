"""User text (names, descriptions, class names, paths) shown literally in every output.

Each output escapes for itself: the terminal (control characters), Markdown, LaTeX (text mode,
which ``\\text{}`` in math also is) and matplotlib (see plot.py: mathtext off on user text).
"""

from __future__ import annotations

import re
import unicodedata

from rich.text import Text

# --------------------------------------------------------------------------- terminal

# C0/C1 controls, DEL, format characters (bidi overrides, zero-width) and line/paragraph separators:
# none of them shows as a glyph, and ESC or OSC sequences would drive the terminal
_HIDDEN = {"Cc", "Cf", "Cs", "Zl", "Zp"}
_NAMED = {"\n": r"\n", "\t": r"\t", "\r": r"\r"}


def _shown(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: str) -> str:
    """``text`` with every control or invisible character written as an escape (ESC -> ``\\x1b``)."""
    if text.isprintable():  # the common case, fast: no control, format or separator character
        return text
    return "".join(_shown(ch) if unicodedata.category(ch) in _HIDDEN else ch for ch in text)


def plain(text: object, style: str = "") -> Text:
    """A rich Text that shows ``text`` as written: never read as markup, controls escaped."""
    return Text(visible(str(text)), style=style)


# --------------------------------------------------------------------------- Markdown

_MD_ALWAYS = {"\\": "\\\\", "`": "\\`", "*": "\\*", "[": "\\[", "]": "\\]", "|": "\\|", "$": "\\$",
              "~": "\\~", "<": "&lt;", ">": "&gt;", "&": "&amp;"}
_MD_LINE_START = re.compile(r"^(\s*)([#+\-=>]|\d+[.)])")


def md_text(text: str, start: bool = False) -> str:
    """Markdown (GitHub) that shows ``text`` literally: no emphasis, code, link, math, HTML or table
    cell break. ``start``: the text begins a line or a list item, where ``#``, ``-`` or ``1.`` would
    make a heading or a list."""
    text = visible(text)
    out = []
    for i, ch in enumerate(text):
        if ch == "_":  # between letters or digits an underscore is inert (linear_3 stays as written)
            inert = 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
            out.append(ch if inert else "\\_")
        else:
            out.append(_MD_ALWAYS.get(ch, ch))
    escaped = "".join(out)
    if start:
        match = _MD_LINE_START.match(escaped)
        if match:
            lead, mark = match.groups()
            escaped = "&#32;" * len(lead) + mark[:-1] + "\\" + mark[-1] + escaped[match.end():]
        elif escaped[:1].isspace():  # leading spaces would make an indented code block
            stripped = escaped.lstrip()
            escaped = "&#32;" * (len(escaped) - len(stripped)) + stripped
    return escaped


# plain enough to sit in MathJax's \text{} as it is: MathJax has no escape inside \text{}
_MATHJAX_TEXT = re.compile(r"[A-Za-z0-9 _.,:;=+\-()/'!?]*")


def mathjax_text_safe(text: str) -> bool:
    return _MATHJAX_TEXT.fullmatch(text) is not None


# --------------------------------------------------------------------------- LaTeX

_TEX_ASCII = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\texttt{\char36}", "&": r"\&", "%": r"\%", "#": r"\#",
    "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}", "<": r"\textless{}",
    ">": r"\textgreater{}", "|": r"\textbar{}", '"': r"\texttt{\char34}", "'": r"\texttt{\char39}",
    "`": r"\texttt{\char96}", "[": "{[}", "]": "{]}", "*": "{*}",
}
# letters and signs by command, so no inputenc table is needed (all in the default OT1 and math fonts but
# £, §, ¶ and ©, in TS1); quotes and dashes in braces, so no ligature forms with the next character
_TEX_OTHER = {
    "ß": r"\ss{}", "æ": r"\ae{}", "Æ": r"\AE{}", "œ": r"\oe{}", "Œ": r"\OE{}", "ø": r"\o{}", "Ø": r"\O{}",
    "å": r"\aa{}", "Å": r"\AA{}", "ł": r"\l{}", "Ł": r"\L{}", "ı": r"\i{}", "¡": r"\textexclamdown{}",
    "¿": r"\textquestiondown{}", "£": r"\pounds{}", "§": r"\S{}", "¶": r"\P{}", "©": r"\copyright{}",
    "\u00a0": "~", "‘": "{`}", "’": "{'}", "“": "{``}", "”": "{''}", "–": "{--}", "—": "{---}", "…": r"\ldots{}",
    "°": r"\ensuremath{^\circ}", "±": r"\ensuremath{\pm}", "×": r"\ensuremath{\times}",
    "÷": r"\ensuremath{\div}", "·": r"\ensuremath{\cdot}", "µ": r"\ensuremath{\mu}",
    "→": r"\ensuremath{\rightarrow}", "←": r"\ensuremath{\leftarrow}", "≤": r"\ensuremath{\leq}",
    "≥": r"\ensuremath{\geq}", "≡": r"\ensuremath{\equiv}", "−": r"\ensuremath{-}", "⌊": r"\ensuremath{\lfloor}",
    "⌋": r"\ensuremath{\rfloor}", "⌈": r"\ensuremath{\lceil}", "⌉": r"\ensuremath{\rceil}",
}
# Greek letters in code-point order from alpha (U+03B1) and Alpha (U+0391); U+03A2 is unassigned
_GREEK = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu",
          "nu", "xi", "omicron", "pi", "rho", "varsigma", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega")
_GREEK_UPPER = ("Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega")
for _i, _name in enumerate(_GREEK):
    if _name != "omicron":  # no command: it is an o
        _TEX_OTHER[chr(0x3B1 + _i)] = rf"\ensuremath{{\{_name}}}"
    if _name.capitalize() in _GREEK_UPPER:
        _TEX_OTHER[chr(0x391 + _i)] = rf"\ensuremath{{\{_name.capitalize()}}}"
_TEX_ACCENTS = {"\u0300": "`", "\u0301": "'", "\u0302": "^", "\u0303": "~", "\u0308": '"', "\u030a": "r",
                "\u0327": "c", "\u030c": "v", "\u0304": "=", "\u0306": "u", "\u0307": ".", "\u030b": "H"}


def _tex_char(ch: str) -> str:
    if ch in _TEX_ASCII:
        return _TEX_ASCII[ch]
    if " " <= ch <= "~":
        return ch
    if ch in _TEX_OTHER:
        return _TEX_OTHER[ch]
    decomposed = unicodedata.normalize("NFD", ch)  # é = e + acute: \'{e}
    base, marks = decomposed[:1], decomposed[1:]
    if base.isascii() and base.isalpha() and marks and all(m in _TEX_ACCENTS for m in marks):
        text = "\\i" if base == "i" else base  # the dotless i takes the accent
        for mark in marks:
            text = f"\\{_TEX_ACCENTS[mark]}{{{text}}}"
        return text
    return rf"\texttt{{U+{ord(ch):04X}}}"  # a character pdflatex has no glyph for, named by its code


def tex_text(text: str) -> str:
    """LaTeX text mode (also inside ``\\text{}``, table cells, captions and section titles) that
    typesets ``text`` as written: no control sequence, group, math, comment or ligature survives."""
    text = visible(text)
    # a hyphen before a hyphen is kept apart (-- and --- are dashes in TeX)
    return "".join("-{}" if ch == "-" and text[i + 1:i + 2] == "-" else _tex_char(ch) for i, ch in enumerate(text))


_TEX_PATH = re.compile(r"[A-Za-z0-9._/+-]+")


def tex_path_safe(path: str) -> bool:
    """A path ``\\includegraphics`` reads as written (no space, brace, %, # or backslash)."""
    return _TEX_PATH.fullmatch(path) is not None and not path.startswith("-")
