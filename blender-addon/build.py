"""Packs the extension into a zip Blender 4.2+ installs (Edit > Preferences > Get Extensions >
Install from Disk, or `blender --command extension install-file -r user_default FILE`):

    python3 blender-addon/build.py render_farm-0.1.0.zip

The zip holds blender_manifest.toml and the add-on's modules at its root, as
`blender --command extension build` makes it (that needs a Blender 4.2+ executable; this needs
only Python).
"""

import pathlib
import sys
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
FILES = (
    "blender_manifest.toml",
    "__init__.py",
    "farm.py",
    "ops.py",
    "props.py",
    "runner.py",
    "ui.py",
)


def build(out):
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in FILES:
            archive.write(HERE / name, name)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 blender-addon/build.py OUT.zip")
    print(build(sys.argv[1]))
