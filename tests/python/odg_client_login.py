"""The original's Python client, `odg_client`, unchanged, against `odg serve`: it logs in with a
GitHub token (`/auth/configs`, then `/auth?access_token=...&api_url=...`, the session taken from
the `bearer_token` cookie), then writes, queries and deletes metadata with its default gzipped
bodies, and marks cache entries for deletion as the extensions do. Prints one JSON object with
what it saw.

    python odg_client_login.py BASE_URL GITHUB_TOKEN GITHUB_API_URL COMPONENT_NAME
"""

import datetime
import json
import sys

import odg_client


def main(argv: list[str]) -> int:
    base_url, token, api_url, component_name = argv
    client = odg_client.DeliveryServiceClient(
        routes=odg_client.DeliveryServiceRoutes(base_url),
        auth_token=token,
        api_url=api_url,
        max_retries=0,
    )
    entry = {
        'artefact': {
            'component_name': component_name,
            'component_version': '1.0.0',
            'artefact_kind': 'resource',
            'artefact': {
                'artefact_name': 'image',
                'artefact_version': '1.0.0',
                'artefact_type': 'ociImage',
                'artefact_extra_id': {},
            },
        },
        'meta': {'datasource': 'bdba', 'type': 'finding/vulnerability'},
        'data': {
            'severity': 'HIGH', 'package_name': 'openssl', 'package_version': '3.0.7',
            'base_url': 'https://bdba', 'report_url': 'https://bdba/1', 'product_id': 1,
            'group_id': 2, 'cve': 'CVE-2023-0286', 'cvss_v3_score': 7.4, 'cvss': {},
            'summary': None,
        },
    }
    query = [{'component_name': component_name}]
    client.update_metadata(data=[entry])
    written = client.query_metadata(artefacts=query, type='finding/vulnerability')
    client.delete_metadata(data=[entry])
    after_delete = client.query_metadata(artefacts=query, type='finding/vulnerability')
    # What the BDBA extension does after a scan: mark the original's summary cache entry by id;
    # and a component descriptor's entry by its descriptor, scheduled.
    client.mark_cache_for_deletion(id='0123456789abcdef0123456789abcdef')
    client.mark_cache_for_deletion(
        descriptor={
            'type': 'component-descriptor', 'encoding_format': 'json',
            'component_name': component_name, 'component_version': '1.0.0',
            'ocm_repository': {'baseUrl': 'demo.odg.invalid/ocm', 'type': 'OCIRegistry'},
        },
        delete_after=datetime.datetime.now(tz=datetime.timezone.utc) + datetime.timedelta(minutes=5),
    )
    print(json.dumps({
        'logged_in': bool(client._bearer_token),
        'written': [row['data']['cve'] for row in written],
        'after_delete': len(after_delete),
        'cache_marked': True,
    }))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
