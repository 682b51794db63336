"""The image's SBOM: an SPDX 2.3 JSON document written and validated by PyPI's spdx-tools.

What it lists is read from the built image, not from the recipe: the Debian packages are the
dpkg stanzas under /var/lib/dpkg/status.d copied out of it, the operator binary is the file copied
out of it (its sha256, and the shared libraries it loads, from its ELF NEEDED entries, mapped to
the packages whose md5sums list them), and the Rust crates linked into the binary are its normal
dependency tree for this target as Cargo resolves it (proc-macros and what only they use are left
out: they run at compile time and are not linked in).

Usage: sbom.py --image REF --digest DIGEST --size BYTES --status-dir DIR --binary FILE
               --manifest-path Cargo.toml --created EPOCH --output FILE
Prints a table of the packages on stdout.
"""

import argparse
import collections
import datetime
import hashlib
import os
import re
import subprocess
import sys

from license_expression import get_spdx_licensing
from spdx_tools.spdx.model import (
    Actor,
    ActorType,
    Checksum,
    ChecksumAlgorithm,
    CreationInfo,
    Document,
    ExternalPackageRef,
    ExternalPackageRefCategory,
    Package,
    PackagePurpose,
    Relationship,
    RelationshipType,
    SpdxNoAssertion,
)
from spdx_tools.spdx.writer.json import json_writer

LICENSING = get_spdx_licensing()
PROJECT = "https://github.com/iothub-access-operator/iothub-access-operator"


def spdx_id(*parts):
    return "SPDXRef-" + "-".join(re.sub(r"[^A-Za-z0-9.-]+", ".", p) for p in parts)


def read_stanzas(status_dir):
    """{package: {field: value}} from the dpkg stanzas of status.d (one file per package)."""
    packages = {}
    for name in sorted(os.listdir(status_dir)):
        if name.endswith(".md5sums"):
            continue
        fields, last = {}, None
        with open(os.path.join(status_dir, name), encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if line.startswith((" ", "\t")) and last:
                    fields[last] += "\n" + line.strip()
                elif ":" in line:
                    last, value = line.split(":", 1)
                    fields[last] = value.strip()
        files = []
        md5 = os.path.join(status_dir, name + ".md5sums")
        if os.path.exists(md5):
            with open(md5, encoding="utf-8") as f:
                files = ["/" + line.split(None, 1)[1].strip() for line in f if line.strip()]
        packages[fields["Package"]] = (fields, files)
    return packages


def needed_libraries(binary):
    out = subprocess.run(["readelf", "-d", binary], check=True, capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def crates(manifest_path):
    """(name, version, license, repository, source path or None) of every crate linked in."""
    host = re.search(r"^host: (\S+)$", subprocess.run(["rustc", "-vV"], check=True, capture_output=True,
                                                       text=True).stdout, re.M).group(1)
    tree = subprocess.run(
        ["cargo", "tree", "--locked", "--offline", "--manifest-path", manifest_path, "-p", "iothub-access-operator",
         "-e", "normal", "--target", host, "--no-dedupe", "--prefix", "depth", "--format", "{p}|{l}|{r}"],
        check=True, capture_output=True, text=True).stdout
    seen, skip_below = {}, None
    for line in tree.splitlines():
        m = re.match(r"^(\d+)(\S+) v(\S+)(?: \(([^)]*)\))?(?: \(proc-macro\))?(?: \(\*\))?\|([^|]*)\|(.*)$", line)
        if not m:
            continue
        depth = int(m.group(1))
        if skip_below is not None and depth > skip_below:
            continue
        skip_below = None
        if "(proc-macro)" in line:
            skip_below = depth
            continue
        name, version, path, license_, repo = m.group(2), m.group(3), m.group(4), m.group(5), m.group(6)
        if path == "proc-macro":
            path = None
        seen[(name, version)] = (name, version, license_, repo, path)
    return sorted(seen.values())


def license_of(text):
    if not text:
        return SpdxNoAssertion()
    text = text.replace("/", " OR ")  # the old Cargo spelling "MIT/Apache-2.0"
    try:
        parsed = LICENSING.parse(text, validate=True)
    except Exception:  # noqa: BLE001 - an expression spdx-tools cannot take is recorded as unknown
        return SpdxNoAssertion()
    return parsed


def supplier(maintainer):
    m = re.match(r"^(.*?)\s*<([^>]+)>$", maintainer or "")
    if not m:
        return SpdxNoAssertion()
    return Actor(ActorType.ORGANIZATION, m.group(1), m.group(2))


def main():
    p = argparse.ArgumentParser()
    for flag in ["image", "digest", "size", "status-dir", "binary", "manifest-path", "created", "output", "version"]:
        p.add_argument("--" + flag, required=True)
    args = p.parse_args()

    with open(args.binary, "rb") as f:
        binary_sha256 = hashlib.sha256(f.read()).hexdigest()
    debs = read_stanzas(args.status_dir)
    needed = needed_libraries(args.binary)
    linked = crates(args.manifest_path)

    created = datetime.datetime.fromtimestamp(int(args.created), datetime.timezone.utc).replace(tzinfo=None)
    repository, _, tag = args.image.rpartition(":")
    doc = Document(CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=f"{args.image} ({args.digest})",
        document_namespace=f"{PROJECT}/spdx/image/{args.digest.replace(':', '-')}",
        creators=[Actor(ActorType.TOOL, "scripts/image (spdx-tools)")],
        created=created,
        creator_comment="Packages read from the built image: dpkg status.d, the binary, the crates Cargo links in.",
    ))

    image_id = spdx_id("image")
    doc.packages.append(Package(
        spdx_id=image_id, name=repository, version=tag, download_location=SpdxNoAssertion(),
        files_analyzed=False, primary_package_purpose=PackagePurpose.CONTAINER,
        license_declared=SpdxNoAssertion(), license_concluded=SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
        external_references=[ExternalPackageRef(
            ExternalPackageRefCategory.PACKAGE_MANAGER, "purl",
            f"pkg:oci/iothub-access-operator@{args.digest.replace(':', '%3A')}?repository_url={repository}")],
        comment=f"uncompressed size {args.size} bytes",
    ))
    doc.relationships.append(Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, image_id))

    binary_id = spdx_id("binary", "iothub-access-operator")
    doc.packages.append(Package(
        spdx_id=binary_id, name="iothub-access-operator", version=args.version, download_location=PROJECT,
        file_name="/usr/local/bin/iothub-access-operator", files_analyzed=False,
        checksums=[Checksum(ChecksumAlgorithm.SHA256, binary_sha256)],
        primary_package_purpose=PackagePurpose.APPLICATION, homepage=PROJECT,
        license_declared=LICENSING.parse("Apache-2.0"), license_concluded=SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
    ))
    doc.relationships.append(Relationship(image_id, RelationshipType.CONTAINS, binary_id))

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    deb_ids = {}
    for name, (fields, files) in sorted(debs.items()):
        pid = spdx_id("deb", name)
        deb_ids[name] = (pid, files)
        comment = None
        if name == "ca-certificates":
            comment = "only /etc/ssl/certs/ca-certificates.crt, generated from its certificates, and its copyright"
        doc.packages.append(Package(
            spdx_id=pid, name=name, version=fields.get("Version"), download_location=SpdxNoAssertion(),
            supplier=supplier(fields.get("Maintainer")), files_analyzed=False,
            source_info=f"Debian source package {fields.get('Source', name).split()[0]}",
            homepage=fields.get("Homepage") or None,
            license_declared=SpdxNoAssertion(), license_concluded=SpdxNoAssertion(),
            copyright_text=SpdxNoAssertion(),
            summary=(fields.get("Description") or "").split("\n")[0] or None,
            primary_package_purpose=PackagePurpose.LIBRARY if name.startswith("lib") else PackagePurpose.OPERATING_SYSTEM,
            external_references=[ExternalPackageRef(
                ExternalPackageRefCategory.PACKAGE_MANAGER, "purl",
                f"pkg:deb/debian/{name}@{fields.get('Version')}?arch={fields.get('Architecture', arch)}"
                f"&distro=debian-12")],
            comment=comment,
        ))
        doc.relationships.append(Relationship(image_id, RelationshipType.CONTAINS, pid))

    dynamic = []
    for soname in needed:
        owners = [n for n, (_, files) in deb_ids.items() if any(f.endswith("/" + soname) for f in files)]
        if not owners:
            sys.exit(f"the binary loads {soname}, which no package in the image provides")
        dynamic.append((soname, owners[0]))
        doc.relationships.append(Relationship(binary_id, RelationshipType.DYNAMIC_LINK, deb_ids[owners[0]][0]))

    by_license = collections.Counter()
    for name, version, license_, repo, path in linked:
        if name == "iothub-access-operator":
            continue
        pid = spdx_id("crate", name, version)
        declared = license_of(license_)
        by_license[str(declared) if not isinstance(declared, SpdxNoAssertion) else "NOASSERTION"] += 1
        location = f"https://crates.io/api/v1/crates/{name}/{version}/download" if path is None else PROJECT
        doc.packages.append(Package(
            spdx_id=pid, name=name, version=version, download_location=location, files_analyzed=False,
            homepage=repo or None, license_declared=declared, license_concluded=SpdxNoAssertion(),
            copyright_text=SpdxNoAssertion(), primary_package_purpose=PackagePurpose.LIBRARY,
            external_references=[ExternalPackageRef(
                ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", f"pkg:cargo/{name}@{version}")]
            if path is None else [],
            comment="a member of this workspace" if path is not None else None,
        ))
        doc.relationships.append(Relationship(binary_id, RelationshipType.STATIC_LINK, pid))

    # Validates against SPDX 2.3 and refuses to write an invalid document.
    json_writer.write_document_to_file(doc, args.output, validate=True)

    print(f"Debian packages ({len(debs)}):")
    print(f"  {'package':<16} {'version':<22} {'installed size':>15}")
    for name, (fields, _) in sorted(debs.items()):
        size = fields.get("Installed-Size", "?")
        note = "  (only the CA bundle)" if name == "ca-certificates" else ""
        print(f"  {name:<16} {fields.get('Version', '?'):<22} {size + ' KiB':>15}{note}")
    print(f"binary /usr/local/bin/iothub-access-operator {args.version}, sha256 {binary_sha256}")
    print("  loads " + ", ".join(f"{s} ({o})" for s, o in dynamic))
    print(f"  links {len(linked) - 1} Rust crates, by declared license: "
          + ", ".join(f"{lic} {n}" for lic, n in by_license.most_common()))
    print(f"SBOM (SPDX 2.3 JSON, {len(doc.packages)} packages): {args.output}")


if __name__ == "__main__":
    main()
