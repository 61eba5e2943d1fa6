"""The Delivery Dashboard (the original's React UI) driven in headless Chromium through the
DevTools protocol (Playwright's Python package, pointed at the system's Chromium), against an
`odg serve` that serves the dashboard on its own origin (`--dashboard-dir`).

It logs in on the login page's token tab, reaches the landing page, opens a component and visits
each of the component page's tabs that the dashboard shows for odg, taking a screenshot of each.
Every failed request (status >= 400 or a network error) and every console error is recorded.
Prints one JSON object: {"pages", "tabs", "answers", "failed_requests", "console_errors",
"unauthorized_before_login"} (lists; a 401 before the token is stored, and its console line, goes to
the last one: the original also answers 401 to a guarded route the login page's frame reads);
the exit code is 0 when it ran to the end (the caller judges the lists), else 1 with "error" added
and a screenshot of where it stopped.

    python drive.py BASE_URL GITHUB_TOKEN COMPONENT_NAME COMPONENT_VERSION PREVIOUS_VERSION SCREENSHOT_DIR LANDING_TEXT

PREVIOUS_VERSION is the version the diff tab compares COMPONENT_VERSION with.

LANDING_TEXT is a text the landing page shows once its components have loaded.
"""

import json
import os
import re
import sys
import urllib.parse

from playwright.sync_api import sync_playwright

# Bounds against hangs, not speed requirements: a debug build of odg on a loaded machine.
STEP_TIMEOUT_MS = 60_000
CHROMIUM = os.environ.get('ODG_CHROMIUM', '/usr/bin/chromium')
VIEWPORT = {'width': 1400, 'height': 900}


def main(argv: list[str]) -> int:
    base_url, token, component_name, component_version, previous_version, screenshot_dir, landing_text = argv
    base_url = base_url.rstrip('/')
    os.makedirs(screenshot_dir, exist_ok=True)
    failed_requests: list[str] = []
    console_errors: list[str] = []
    unauthorized_before_login: list[str] = []
    # Set once the UI has stored the session token.
    signed_in = {'yes': False}
    pages: list[str] = []
    # The component page's tab captions once settled, and every answer but the bundle's files.
    tabs: list[str] = []
    answers: list[str] = []
    # The component's vulnerability categorisation in each compliance summary the page received,
    # in order: the rescoring applied in the dialog must show in the later ones.
    vulnerability_summaries: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
        )
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)

        answered: set[int] = set()

        def on_response(response):
            answered.add(id(response.request))
            if '/static/' not in response.url:
                answers.append(f'{response.status} {response.request.method} {response.url}')
            if response.status == 401 and not signed_in['yes']:
                unauthorized_before_login.append(f'{response.status} {response.request.method} {response.url}')
            elif response.status >= 400:
                failed_requests.append(f'{response.status} {response.request.method} {response.url}')
            if response.status == 200 and '/components/compliance-summary' in response.url:
                vulnerability_summaries.extend(summary_categorisations(response.json(), component_name))

        def on_request_failed(request):
            # A request whose answer arrived and whose body the page left unread when it
            # navigated away is reported as aborted: not a failure of the server.
            if request.failure == 'net::ERR_ABORTED' and id(request) in answered:
                return
            failed_requests.append(f'network error {request.method} {request.url}: {request.failure}')

        def on_console(message):
            if message.type == 'error' and not signed_in['yes'] and '(Unauthorized)' in message.text:
                unauthorized_before_login.append(f'{message.text} ({message.location.get("url", "")})')
            elif message.type == 'error':
                console_errors.append(f'{message.text} ({message.location.get("url", "")})')

        page.on('response', on_response)
        page.on('requestfailed', on_request_failed)
        page.on('console', on_console)
        page.on('pageerror', lambda error: console_errors.append(f'page error: {error}'))
        try:
            visit(page, base_url, token, component_name, component_version, screenshot_dir, pages, tabs,
                  landing_text, signed_in, previous_version)
        except Exception as error:  # reported with what the page showed, for the caller's message
            failure = os.path.join(os.environ.get('TMPDIR', '/tmp'), 'odg-dashboard-failure.png')
            page.screenshot(path=failure)
            print(json.dumps({
                'error': f'{type(error).__name__}: {error}',
                'url': page.url,
                'failure_screenshot': failure,
                'answers': answers,
                'pages': pages,
                'failed_requests': failed_requests,
                'console_errors': console_errors,
                'unauthorized_before_login': unauthorized_before_login,
                'vulnerability_summaries': vulnerability_summaries,
            }))
            return 1
        finally:
            browser.close()

    print(json.dumps({
        'pages': pages,
        'tabs': tabs,
        'answers': answers,
        'failed_requests': failed_requests,
        'console_errors': console_errors,
        'unauthorized_before_login': unauthorized_before_login,
        'vulnerability_summaries': vulnerability_summaries,
    }))
    return 0


def summary_categorisations(summary: dict, component_name: str) -> list[str]:
    """The vulnerability categorisation of `component_name` in a compliance summary answer."""
    return [
        entry['categorisation']
        for component in summary.get('complianceSummary', [])
        if component.get('componentId', {}).get('name') == component_name
        for entry in component.get('entries', [])
        if entry.get('type') == 'finding/vulnerability'
    ]


def visit(page, base_url, token, component_name, component_version, screenshot_dir, pages, tabs,
          landing_text, signed_in, previous_version):
    """The walk through the UI; a screenshot per page and tab, named in `pages`."""

    def shot(name: str):
        # Let pending fetches settle and the placeholders (MUI skeletons) give way to what they
        # wait for, so the picture shows the loaded state.
        page.wait_for_load_state('networkidle')
        page.locator('.MuiSkeleton-root').first.wait_for(state='detached')
        page.screenshot(path=os.path.join(screenshot_dir, f'{name}.png'), full_page=True)
        pages.append(name)

    # Login: without a token the UI sends us to its login page.
    page.goto(f'{base_url}/')
    page.wait_for_url('**/#/login**')
    page.get_by_role('tab', name='token').click()
    page.get_by_label('Token').fill(token)
    shot('login')
    page.get_by_role('button', name='Login').click()
    page.wait_for_function("() => localStorage.getItem('delivery_dashboard_jwt') !== null")
    signed_in['yes'] = True
    page.wait_for_url(lambda url: '#/login' not in url)
    page.get_by_text(landing_text).first.wait_for()
    shot('landing')

    # A component with its root entry expanded (its responsibles and artefact metadata), then
    # each tab the dashboard shows for odg. The tabs follow /features: the diff, tests and DORA
    # tabs go once it says those are unavailable, the compliance tab comes with the finding
    # configurations.
    query = urllib.parse.urlencode({
        'name': component_name,
        'version': component_version,
        'view': 'bom',
        'rootExpanded': 'true',
    })
    page.goto(f'{base_url}/#/component?{query}')
    page.get_by_role('tab', name='Compliance').wait_for()
    for hidden in ('Tests', 'Dora'):
        page.get_by_role('tab', name=hidden, exact=True).wait_for(state='detached')
    shot('component-bom')
    tabs.extend(caption.strip() for caption in page.get_by_role('tab').all_inner_texts())
    for caption, view in (('Component Descriptor', 'cd'), ('Compliance', 'compliance')):
        page.get_by_role('tab', name=caption).click()
        page.wait_for_url(f'**view={view}**')
        page.get_by_role('tab', name=caption, selected=True).wait_for()
        shot('component-' + ('descriptor' if view == 'cd' else view))

    # The diff of two versions: the demo has no upgrade pull requests (no GitHub), so the tab
    # offers its own comparison; the previous release against this one.
    page.get_by_role('tab', name='Component Diff').click()
    page.wait_for_url('**view=diff**')
    page.get_by_text('Currently, there are no Upgrade-Pull-Requests.').wait_for()
    # the first shown version field is the left one (the header holds hidden ones)
    page.get_by_label('Version').filter(visible=True).first.fill(previous_version)
    with page.expect_response(lambda response: '/components/diff' in response.url) as diff:
        page.get_by_label('Add Component Diff').click()
    if diff.value.status != 200:
        raise RuntimeError(f'POST /components/diff answered {diff.value.status}')
    # open the comparison: what changed between the two versions
    page.locator('.MuiAccordionSummary-root').filter(has_text=previous_version).filter(
        visible=True).first.click()
    page.get_by_text('Changed components:').wait_for()
    page.get_by_role('button', name='Expand all').click()
    page.get_by_role('button', name='Collapse all').wait_for()
    shot('component-diff')

    # The metadata browser: its search fields, then a search run as the tab prefills it.
    page.get_by_role('tab', name='Query').click()
    page.wait_for_url('**view=query**')
    page.get_by_role('button', name='Run', exact=True).click()
    page.wait_for_load_state('networkidle')
    shot('component-query')

    rescore(page, base_url, component_name, component_version, shot)


def rescore(page, base_url, component_name, component_version, shot):
    """The rescoring dialog as the issue replicator's links open it (one artefact, one finding
    type): rescore the worst vulnerability to High with a comment and apply it; then the
    component page again, freshly loaded, whose compliance summary must show the change."""
    artefact = f'{component_name.rsplit("/", 1)[-1]}|{component_version}|ociImage|resource'
    query = urllib.parse.urlencode({
        'name': component_name,
        'version': component_version,
        'view': 'bom',
        'rescoreArtefacts': artefact,
        'findingType': 'finding/vulnerability',
    })
    # a fresh load: the component page reads `rescoreArtefacts` when it mounts
    page.goto(f'{base_url}/#/component?{query}')
    page.reload()
    dialog = page.get_by_role('dialog')
    dialog.wait_for()
    row = dialog.locator('tbody tr', has_text='CVE-2023-45853')
    row.wait_for()
    dialog.locator('.MuiSkeleton-root').first.wait_for(state='detached')
    shot('rescoring-dialog')
    row.locator('.MuiSelect-select').first.click()
    page.get_by_role('option', name='High', exact=True).click()
    row.get_by_label('Comment').fill('zlib is not reachable from the checkout service')
    apply = dialog.get_by_role('button', name=re.compile(r'^Apply Rescoring \(1\)'))
    # enabled once the comment has been taken over (the dialog debounces it)
    page.wait_for_function(
        """() => [...document.querySelectorAll('button')].some(
            (b) => b.textContent.startsWith('Apply Rescoring (1)') && !b.disabled)""")
    shot('rescoring-edited')
    apply.click()
    page.get_by_text('Successfully applied 1 rescoring').wait_for()
    dialog.wait_for(state='detached')
    query = urllib.parse.urlencode({
        'name': component_name,
        'version': component_version,
        'view': 'compliance',
    })
    page.goto(f'{base_url}/#/component?{query}')
    page.reload()
    page.get_by_role('tab', name='Compliance', selected=True).wait_for()
    shot('component-compliance-rescored')

if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
