"""Redis's glob matching (stringmatch): * ? [abc] [^a-z] and backslash escapes."""
from __future__ import annotations


def stringmatch(pattern: str, string: str, nocase: bool = False) -> bool:
    if nocase:
        pattern, string = pattern.lower(), string.lower()
    return _match(pattern, 0, string, 0)


def _match(p: str, pi: int, s: str, si: int) -> bool:
    while pi < len(p):
        ch = p[pi]
        if ch == "*":
            while pi + 1 < len(p) and p[pi + 1] == "*":
                pi += 1
            if pi + 1 == len(p):
                return True
            for start in range(si, len(s) + 1):
                if _match(p, pi + 1, s, start):
                    return True
            return False
        if si >= len(s):
            return False
        if ch == "?":
            si += 1
        elif ch == "[":
            pi += 1
            negate = pi < len(p) and p[pi] == "^"
            if negate:
                pi += 1
            matched = False
            while pi < len(p) and p[pi] != "]":
                if p[pi] == "\\" and pi + 1 < len(p):
                    pi += 1
                    if p[pi] == s[si]:
                        matched = True
                elif pi + 2 < len(p) and p[pi + 1] == "-" and p[pi + 2] != "]":
                    lo, hi = sorted((p[pi], p[pi + 2]))
                    if lo <= s[si] <= hi:
                        matched = True
                    pi += 2
                elif p[pi] == s[si]:
                    matched = True
                pi += 1
            if negate:
                matched = not matched
            if not matched:
                return False
            si += 1
        elif ch == "\\" and pi + 1 < len(p):
            pi += 1
            if p[pi] != s[si]:
                return False
            si += 1
        else:
            if ch != s[si]:
                return False
            si += 1
        pi += 1
    return si == len(s)
