"""Check JSON against async-stripe 1.0.0-rc.10's deserializers, read from its sources.

A struct field is required when its builder's `deser_default` does not set it to
`Some(None)`; a non-`Option` field must also be non-null. String enums with an
`Unknown(String)` variant accept any string; object-tagged enums dispatch on
`object`. Unknown JSON keys are ignored, like miniserde does.

    errors = check(json_value, "CheckoutSession")   # [] when it deserializes
"""
import glob
import os
import re

_CRATES = "async-stripe-*-1.0.0-rc.10/src/**/*.rs"
_INTS = {"i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "usize", "Timestamp"}
_STR_ALIASES = {"String", "str", "Currency"}


def _find_sources():
    home = os.path.expanduser("~/.cargo/registry/src")
    return sorted(glob.glob(os.path.join(home, "*", _CRATES), recursive=True))


class Schema:
    def __init__(self, files=None):
        self.structs = {}  # name -> {json_key: (type_str, required)}
        self.str_enums = {}  # name -> None (any string) | set of values
        self.obj_enums = {}  # name -> {object: type_str}
        self.ids = set()
        for path in files if files is not None else _find_sources():
            with open(path, encoding="utf-8") as f:
                self._parse(f.read())

    @property
    def available(self):
        return bool(self.structs)

    def _parse(self, text):
        for m in re.finditer(r"def_id!\((\w+)", text):
            self.ids.add(m.group(1))
        for m in re.finditer(r"^pub struct (\w+) \{\n(.*?)^\}", text, re.M | re.S):
            self._parse_struct(text, m.group(1), m.group(2))
        for m in re.finditer(r"^pub enum (\w+) \{\n(.*?)^\}", text, re.M | re.S):
            self._parse_enum(text, m.group(1), m.group(2))

    def _parse_struct(self, text, name, body):
        if name.endswith("Builder"):
            return
        impl = re.search(r"impl MapBuilder\s+for %sBuilder\s*\{(.*?)\n        fn take_out" % name,
                         text, re.S)
        if not impl:
            return
        field_types = {}
        depth, start, text = 0, 0, _strip_attrs(body) + ","
        for i, ch in enumerate(text):
            depth += {"<": 1, ">": -1}.get(ch, 0)
            if ch == "," and depth == 0:
                m = re.match(r"\s*(?:pub(?:\([\w:]+\))? )?(\w+): (.*)", text[start:i], re.S)
                if m:
                    field_types[m.group(1)] = m.group(2).strip()
                start = i + 1
        block = impl.group(1)
        keys = re.findall(r'"([^"]+)" => \{?\s*Deserialize::begin\(&mut self\.(\w+)\)', block)
        default = re.search(r"fn deser_default\(\) -> Self \{\s*Self \{(.*?)\}\s*\}", block, re.S)
        optional = set(re.findall(r"(\w+): Some\(None\)", default.group(1))) if default else set()
        fields = {}
        for key, field in keys:
            if field in field_types:
                fields[key] = (field_types[field], field not in optional)
        self.structs[name] = fields

    def _parse_enum(self, text, name, body):
        from_str = re.search(r"impl std::str::FromStr\s+for\s+%s\s*\{(.*?)\n\}" % name, text, re.S)
        if from_str:
            if "Unknown(" in from_str.group(1):
                self.str_enums[name] = None
            else:
                self.str_enums[name] = set(re.findall(r'"([^"]+)" => Ok', from_str.group(1)))
            return
        variants = re.findall(r'serde\(rename = "(\w+)"\)\)\]\s*\w+\(([\w:<>]+)\)', body)
        if variants:
            self.obj_enums[name] = dict(variants)

    # -- checking -----------------------------------------------------------------------------

    def check(self, value, type_str, path="$"):
        errors = []
        self._check(value, _parse_type(type_str), path, errors)
        return errors

    def _check(self, v, t, path, errors):
        name, args = t
        if name == "Option":
            if v is not None:
                self._check(v, args[0], path, errors)
            return
        if v is None:
            errors.append("%s: null for non-optional %s" % (path, _fmt(t)))
            return
        if name in ("Box",):
            return self._check(v, args[0], path, errors)
        if name == "bool":
            return _expect(isinstance(v, bool), v, path, name, errors)
        if name in _INTS:
            return _expect(isinstance(v, int) and not isinstance(v, bool), v, path, name, errors)
        if name in ("f64", "f32"):
            return _expect(isinstance(v, (int, float)) and not isinstance(v, bool), v, path,
                           name, errors)
        if name in _STR_ALIASES or name in self.ids or (name.endswith("Id") and
                                                         name not in self.structs):
            return _expect(isinstance(v, str), v, path, name, errors)
        if name == "AlwaysTrue":
            return _expect(v is True, v, path, "true", errors)
        if name == "Value":
            return
        if name == "Vec":
            if _expect(isinstance(v, list), v, path, "array", errors):
                for i, item in enumerate(v):
                    self._check(item, args[0], "%s[%d]" % (path, i), errors)
            return
        if name == "HashMap":
            if _expect(isinstance(v, dict), v, path, "map", errors):
                for k, item in v.items():
                    self._check(item, args[1], "%s.%s" % (path, k), errors)
            return
        if name in ("List", "SearchList"):
            if not _expect(isinstance(v, dict), v, path, name, errors):
                return
            need = {"data": ("Vec", args), "has_more": ("bool", []), "url": ("String", [])}
            if name == "SearchList":
                need["next_page"] = ("Option", [("String", [])])
            for key, sub in need.items():
                if key not in v:
                    errors.append("%s: missing required %s" % (path, key))
                else:
                    self._check(v[key], sub, "%s.%s" % (path, key), errors)
            return
        if name == "Expandable":
            if isinstance(v, str):
                return
            return self._check(v, args[0], path, errors)
        if name in self.str_enums:
            allowed = self.str_enums[name]
            if _expect(isinstance(v, str), v, path, name, errors) and allowed is not None \
                    and v not in allowed:
                errors.append("%s: %r not a %s (%s)" % (path, v, name, sorted(allowed)))
            return
        if name in self.obj_enums:
            if not _expect(isinstance(v, dict), v, path, name, errors):
                return
            inner = self.obj_enums[name].get(v.get("object"))
            if inner is None:
                errors.append("%s: object %r not one of %s" % (path, v.get("object"),
                                                               sorted(self.obj_enums[name])))
                return
            return self._check(v, _parse_type(inner), path, errors)
        if name in self.structs:
            if not _expect(isinstance(v, dict), v, path, name, errors):
                return
            for key, (ftype, required) in self.structs[name].items():
                if key not in v:
                    if required:
                        errors.append("%s: missing required %s (%s)" % (path, key, ftype))
                    continue
                self._check(v[key], _parse_type(ftype), "%s.%s" % (path, key), errors)
            return
        errors.append("%s: unknown type %s (not checked)" % (path, _fmt(t)))


def _strip_attrs(body):
    """Struct body without doc comments and #[...] attributes, on one line."""
    body = " ".join(ln.strip() for ln in body.splitlines() if not ln.strip().startswith("//"))
    out, i = [], 0
    while i < len(body):
        if body.startswith("#[", i):
            depth, i = 1, i + 2
            while depth and i < len(body):
                depth += {"[": 1, "]": -1}.get(body[i], 0)
                i += 1
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def _expect(ok, v, path, what, errors):
    if not ok:
        errors.append("%s: expected %s, got %r" % (path, what, v))
    return ok


def _parse_type(s):
    """'Option<stripe_types::List<stripe_shared::Price>>' -> ('Option', [('List', [...])])"""
    tokens = re.findall(r"[\w:]+|[<>,]", s)
    pos = 0

    def parse():
        nonlocal pos
        name = tokens[pos].split("::")[-1]
        pos += 1
        args = []
        if pos < len(tokens) and tokens[pos] == "<":
            pos += 1
            while tokens[pos] != ">":
                if tokens[pos] == ",":
                    pos += 1
                    continue
                args.append(parse())
            pos += 1
        return (name, args)

    return parse()


def _fmt(t):
    name, args = t
    return name + ("<%s>" % ", ".join(_fmt(a) for a in args) if args else "")


_schema = None


def check(value, type_str):
    global _schema
    if _schema is None:
        _schema = Schema()
    return _schema.check(value, type_str)


def available():
    global _schema
    if _schema is None:
        _schema = Schema()
    return _schema.available


if __name__ == "__main__":
    import json
    import sys
    s = Schema()
    print(len(s.structs), "structs", len(s.str_enums), "string enums", len(s.obj_enums),
          "object enums", file=sys.stderr)
    for t in sys.argv[1:]:
        print(t, json.dumps({k: v for k, v in s.structs[t].items() if v[1]}, indent=1))
