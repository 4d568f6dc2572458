"""A PEP 517 build backend for hawk_client, standard library only.

pip installs ./clients/python offline with it and nothing else: no setuptools, no
wheel package (Debian's python3-setuptools alone cannot build a wheel).
"""
import base64
import hashlib
import os
import zipfile

NAME, VERSION = "hawk_client", "1.0.0"
MODULES = ["hawk_client.py", "hawk_tls.py", "hawk_upload.py"]
_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_METADATA = """Metadata-Version: 2.1
Name: hawk-client
Version: %s
Summary: A hawk agent client, written from docs/PROTOCOL.md (standard library only)
License: Apache-2.0
Requires-Python: >=3.8
""" % VERSION
_WHEEL = "Wheel-Version: 1.0\nGenerator: hawk wheel_backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d\n" % (path, digest, len(data))


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = "%s-%s-py3-none-any.whl" % (NAME, VERSION)
    info = "%s-%s.dist-info" % (NAME, VERSION)
    files = []
    for m in MODULES:
        with open(os.path.join(_HERE, m), "rb") as f:
            files.append((m, f.read()))
    files.append((info + "/METADATA", _METADATA.encode()))
    files.append((info + "/WHEEL", _WHEEL.encode()))
    record = "".join(_record_line(p, d) for p, d in files) + info + "/RECORD,,\n"
    files.append((info + "/RECORD", record.encode()))
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for p, d in files:
            z.writestr(zipfile.ZipInfo(p, date_time=(1980, 1, 1, 0, 0, 0)), d)
    return name


def get_requires_for_build_wheel(config_settings=None):
    return []
