"""axe-core in the browser tests: the WCAG 2.0 A and AA rules (GB/T 37668-2019 builds on WCAG 2.0) run on a page.

axe-core is a devDependency of web/package.json (npm ci puts it in web/node_modules). It is evaluated as a script's
source text through the DevTools protocol: `page.add_script_tag` would add an inline <script>, which the page's
Content-Security-Policy refuses (it allows only scripts with the response's nonce), and the tab fails its test on
any CSP violation. Evaluating it changes nothing in the page and loads nothing from anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import ROOT

AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa"]
BLOCKING = ("serious", "critical")


def axe_violations(page: Any, *, impacts: tuple[str, ...] = BLOCKING, axe: Path = AXE) -> list[dict[str, Any]]:
    """The violations of the WCAG 2.0 A/AA rules on the page as it is now, with an impact in `impacts`: each as
    {id, impact, help, nodes: [the first few failing elements' selectors and summaries]}."""
    assert axe.exists(), f"{axe} is missing: run `npm ci` in web/"
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(axe.read_text(encoding="utf-8") + "\n;undefined")
    result = page.evaluate(
        "(tags) => axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })",
        WCAG_AA,
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [{"target": n["target"], "summary": n.get("failureSummary", "")} for n in v["nodes"][:5]],
        }
        for v in result["violations"]
        if v["impact"] in impacts
    ]
