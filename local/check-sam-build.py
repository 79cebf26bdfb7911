"""Every function's CodeUri in the built template must hold an arm64 ELF `bootstrap`."""

import pathlib
import re
import struct
import sys

EM_AARCH64 = 183
BUILT = pathlib.Path(".aws-sam/build")


def main() -> None:
    template = (BUILT / "template.yaml").read_text()
    uris = sorted(set(re.findall(r"^\s+CodeUri:\s*(\S+)", template, re.M)))
    if not uris:
        sys.exit("sam build: no CodeUri in the built template")
    for uri in uris:
        bootstrap = BUILT / uri / "bootstrap"
        if not bootstrap.is_file():
            sys.exit(f"sam build: {bootstrap} is missing")
        header = bootstrap.read_bytes()[:20]
        machine = struct.unpack_from("<H", header, 18)[0]
        if header[:4] != b"\x7fELF" or machine != EM_AARCH64:
            sys.exit(f"sam build: {bootstrap} is not an arm64 executable")
        print(f"built {uri}: {bootstrap.stat().st_size} bytes, arm64")


if __name__ == "__main__":
    main()
