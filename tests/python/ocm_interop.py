#!/usr/bin/env python3
'''
Interop driver for the Rust integration tests: exercises the independent public OCM/OCI client
(PyPI `gardener-ocm` / `gardener-oci`, modules `ocm`, `oci`, `version`) against a plain-HTTP
(loopback) OCI registry, so that the Rust service can be checked against what that library
writes and reads.

Subcommands (JSON on stdout; errors on stderr and a non-zero exit code):

  upload       --repo http://HOST:PORT/PATH [--on-exist skip|fail|overwrite] FILE...
  read         --repo http://HOST:PORT/PATH --name NAME --version VERSION
  versions     --repo http://HOST:PORT/PATH --name NAME
  dependencies --repo http://HOST:PORT/PATH --name NAME --version VERSION

The OCI client is configured the way the delivery service configures it
(`semver_sanitising_oci_client`): `+` in tags is written as `.build-` and mapped back on listing.
The library assumes HTTPS; it is routed to `http://HOST:PORT/v2/` and told to use (anonymous)
basic auth for that host, so it never probes `https://HOST:PORT/v2/`.
'''

import argparse
import collections.abc
import dataclasses
import datetime
import enum
import hashlib
import json
import logging
import sys
import urllib.parse

import yaml

import oci.client
import oci.model
import ocm
import ocm.iter
import ocm.retrieve
import ocm.upload
import version as versionutil


def parse_repo(repo_url: str) -> tuple[str, str]:
    '''
    split `http://HOST:PORT[/PATH]` into (`HOST:PORT`, OCM repository `HOST:PORT[/PATH]`)
    '''
    parsed = urllib.parse.urlparse(repo_url)
    if parsed.scheme != 'http' or not parsed.netloc:
        raise ValueError(f'--repo must look like http://HOST:PORT[/PATH], got {repo_url!r}')
    path = parsed.path.strip('/')
    return parsed.netloc, f'{parsed.netloc}/{path}' if path else parsed.netloc


def oci_client(netloc: str) -> oci.client.Client:
    '''
    a (sync) library OCI client that talks plain HTTP to `netloc`, anonymously
    '''
    def base_api_url_lookup(image_reference: str) -> str:
        ref_netloc = oci.model.OciImageReference.to_image_ref(image_reference).netloc
        if ref_netloc == netloc:
            return f'http://{netloc}/v2/'
        return oci.client.base_api_url(image_reference)  # anything else: library default

    client = oci.client.Client(
        credentials_lookup=oci.client.no_credentials_lookup,
        routes=oci.client.OciRoutes(base_api_url_lookup=base_api_url_lookup),
        tag_preprocessing_callback=versionutil.sanitise_version,
        tag_postprocessing_callback=versionutil.desanitise_version,
        max_retries=2,
    )
    # the library's auth probe always uses https://HOST/v2/; skip it by fixing the method
    client.token_cache.set_auth_method(
        image_reference=f'{netloc}/dummy',
        auth_method=oci.client.AuthMethod.BASIC,
    )
    return client


def dict_serialisation(data):
    '''
    re-implementation of the delivery service's `util.dict_serialisation`
    '''
    if isinstance(data, enum.Enum):
        return data.value
    elif isinstance(data, str):
        return data
    elif isinstance(data, (datetime.date, datetime.datetime)):
        return data.isoformat()
    elif isinstance(data, datetime.timedelta):
        return data.total_seconds()
    elif dataclasses.is_dataclass(data):
        return dict_serialisation(dataclasses.asdict(data))
    elif isinstance(data, dict):
        return {k: dict_serialisation(v) for k, v in data.items()}
    elif isinstance(data, collections.abc.Iterable):
        return [dict_serialisation(o) for o in data]
    return data


def descriptor_lookup(client: oci.client.Client, ocm_repo: str):
    return ocm.retrieve.create_default_component_descriptor_lookup(
        ocm_repository_lookup=ocm.retrieve.ocm_repository_lookup(ocm_repo),
        oci_client=client,
        default_absent_ok=False,
    )


def cmd_upload(args, client: oci.client.Client, ocm_repo: str):
    uploaded = []
    for path in args.files:
        with open(path) as f:
            descriptor = ocm.ComponentDescriptor.from_dict(yaml.safe_load(f))
        component = descriptor.component
        manifest_bytes = ocm.upload.upload_component_descriptor(
            component_descriptor=descriptor,
            oci_client=client,
            on_exist=args.on_exist,
            ocm_repository=ocm.OciOcmRepository(baseUrl=ocm_repo),
        )
        uploaded.append({
            'name': component.name,
            'version': component.version,
            'reference': component.current_ocm_repo.component_version_oci_ref(component),
            'tag': versionutil.sanitise_version(component.version),
            'skipped': manifest_bytes is None,
            'manifestDigest': (
                f'sha256:{hashlib.sha256(manifest_bytes).hexdigest()}' if manifest_bytes else None
            ),
            'descriptor': dict_serialisation(descriptor),
        })
    return {'uploaded': uploaded}


def cmd_read(args, client: oci.client.Client, ocm_repo: str):
    lookup = descriptor_lookup(client, ocm_repo)
    descriptor = lookup(ocm.ComponentIdentity(name=args.name, version=args.version))
    return dict_serialisation(descriptor)


def cmd_versions(args, client: oci.client.Client, ocm_repo: str):
    lookup = ocm.retrieve.version_lookup(
        ocm_repository_lookup=ocm.retrieve.ocm_repository_lookup(ocm_repo),
        oci_client=client,
    )
    tags = sorted(lookup(args.name))  # a set; sort by str first for a stable order
    parsable = [t for t in tags if versionutil.parse_to_semver(t, invalid_semver_ok=True)]
    parsable = sorted(parsable, key=versionutil.parse_to_semver)  # stable: build meta ignored
    return {
        'versions': parsable,
        'unparsable': [t for t in tags if t not in parsable],
        'greatest': versionutil.greatest_version(parsable, invalid_semver_ok=True),
        # the delivery service's `semver_releases` (lookups.py): neither prerelease nor build metadata
        'greatestRelease': versionutil.greatest_version(
            [t for t in parsable if not versionutil.parse_to_semver(t, invalid_semver_ok=True).build],
            ignore_prerelease_versions=True, invalid_semver_ok=True,
        ),
    }


def cmd_dependencies(args, client: oci.client.Client, ocm_repo: str):
    lookup = descriptor_lookup(client, ocm_repo)
    root = lookup(ocm.ComponentIdentity(name=args.name, version=args.version))
    result = []
    for node in ocm.iter.iter(
        component=root,
        lookup=lookup,
        prune_unique=False,
        node_filter=ocm.iter.Filter.components,
    ):
        component = node.component
        result.append({
            'name': component.name,
            'version': component.version,
            'path': [[e.component.name, e.component.version] for e in node.path],
        })
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].strip())
    sub = parser.add_subparsers(dest='command', required=True)

    def add(name, func, with_name=True, with_version=True):
        p = sub.add_parser(name)
        p.add_argument('--repo', required=True, help='http://HOST:PORT[/PATH]')
        if with_name:
            p.add_argument('--name', required=True)
        if with_version:
            p.add_argument('--version', required=True)
        p.set_defaults(func=func)
        return p

    up = add('upload', cmd_upload, with_name=False, with_version=False)
    up.add_argument('--on-exist', choices=[m.value for m in ocm.upload.UploadMode],
                    default=ocm.upload.UploadMode.SKIP.value)
    up.add_argument('files', nargs='+', metavar='FILE')
    add('read', cmd_read)
    add('versions', cmd_versions, with_version=False)
    add('dependencies', cmd_dependencies)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        netloc, ocm_repo = parse_repo(args.repo)
        result = args.func(args, oci_client(netloc), ocm_repo)
    except Exception as e:
        print(f'error: {type(e).__name__}: {e}', file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
