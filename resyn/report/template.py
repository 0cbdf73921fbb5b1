"""The report's jinja2 template and style sheet.

They live in a Python module rather than in ``.j2``/``.css`` files so they ship with the package
whatever the packaging (the package data of ``pyproject.toml`` lists only ``py.typed`` and the
examples), and a report never depends on finding a file at run time.
"""

from __future__ import annotations

CSS = """
:root { --fg: #1f2328; --muted: #5f6b77; --line: #d8dde3; --bg: #f6f8fa; --card: #fff;
  --ok: #1f7a3d; --bad: #b42318; --warn: #9a6700; --blue: #4a7bd0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); margin: 0; }
header.page, main { max-width: 1180px; margin: 0 auto; padding: 0 20px; }
header.page { padding-top: 20px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 0; }
h4 { font-size: 14px; margin: 14px 0 6px; }
h5 { font-size: 13px; margin: 10px 0 4px; }
nav.toc { margin: 10px 0; display: flex; flex-wrap: wrap; gap: 6px 14px; }
a { color: #0b5cad; }
code, pre { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { white-space: pre-wrap; word-break: break-word; background: var(--bg); border: 1px solid var(--line);
  border-radius: 4px; padding: 6px 8px; margin: 4px 0; max-height: 420px; overflow: auto; }
.muted { color: var(--muted); }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 8px 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; word-break: break-word; }
.numbers { display: flex; flex-wrap: wrap; gap: 12px; }
.number { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; }
.number .value { font-size: 20px; font-weight: 600; display: block; }
.number .label { color: var(--muted); font-size: 12px; }
.chart { max-width: 100%; height: auto; font-size: 12px; }
.chart .bar-label, .chart .bar-value, .chart .axis-label { fill: var(--fg); }
.chart .axis-title { fill: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 12px; }
figure.calibration { background: var(--card); border: 1px solid var(--line); border-radius: 6px;
  margin: 0; padding: 10px; }
figure.calibration figcaption { margin-bottom: 6px; }
.legend { font-size: 12px; color: var(--muted); }
.legend .swatch { display: inline-block; width: 18px; height: 3px; vertical-align: middle; margin-right: 4px; }
.env-card, .task-card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 14px 16px; margin: 0 0 16px; }
.env-card > header, .task-card > header { display: flex; flex-wrap: wrap; gap: 8px; align-items: baseline; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; border: 1px solid; }
.badge.accepted, .badge.passed { color: var(--ok); border-color: var(--ok); }
.badge.too_easy, .badge.too_hard, .badge.unproven, .badge.pending, .badge.duplicate,
.badge.in_progress { color: var(--warn); border-color: var(--warn); }
.badge.rejected, .badge.error, .badge.checks_failed, .badge.judge_rejected, .badge.judge_error,
.badge.no_code { color: var(--bad); border-color: var(--bad); }
.description { white-space: pre-wrap; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; border-bottom: 1px solid var(--line); }
th { color: var(--muted); font-weight: 500; }
td.num, th.num { text-align: right; }
.scores td { border: 0; padding: 1px 10px 1px 0; }
ol.samples, ol.revisions { padding-left: 20px; }
ol.samples li { margin-bottom: 8px; }
ol.revisions li { margin-bottom: 4px; }
.revision .links a { margin-left: 8px; }
.round-details { border-left: 3px solid var(--line); padding: 2px 0 2px 10px; margin: 8px 0; }
.round-details:target, .revision:target, .env-card:target, figure:target { outline: 2px solid var(--blue); }
.check-failure { margin: 4px 0; }
.check-failure .name { font-weight: 600; color: var(--bad); }
.check-warning .name { font-weight: 600; color: var(--warn); }
.empty { font-size: 16px; background: var(--card); border: 1px dashed var(--line); padding: 16px;
  border-radius: 6px; }
footer { max-width: 1180px; margin: 30px auto; padding: 0 20px; color: var(--muted); font-size: 12px; }
"""

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="resyn report">
<title>{{ title }}</title>
<style>{{ css }}</style>
</head>
<body>
<header class="page" id="top">
  <h1>{{ title }}</h1>
  <div class="muted">catalog <code>{{ data.catalog_path }}</code> · generated {{ data.generated_at | when }}</div>
{% if run %}
  <dl class="facts" id="run" data-run-id="{{ run.run_id }}">
  {% for label, value in run_facts %}
    <dt>{{ label }}</dt><dd>{{ value }}</dd>
  {% endfor %}
  </dl>
{% elif data.runs %}
  <p class="muted">{{ data.runs | length }} run{{ '' if data.runs | length == 1 else 's' }}:
  {% for r in data.runs %}<code>{{ r.run_id }}</code> ({{ r.status }}){{ ', ' if not loop.last }}{% endfor %}</p>
{% endif %}
{% if not data.empty %}
  <nav class="toc">
    <a href="#summary">summary</a><a href="#funnel">funnel</a><a href="#failures">failures</a>
    <a href="#rounds">rounds</a><a href="#cost">cost</a><a href="#calibration">calibration</a>
    <a href="#environments">environments ({{ data.environments | length }})</a>
    <a href="#rejected">rejected keywords ({{ data.rejected | length }})</a>
  </nav>
{% endif %}
</header>
<main>
{% if data.empty %}
  <p class="empty" id="empty">
  {% if not data.runs %}
    This catalog is empty: it has no runs yet. Fill it with <code>resyn synthesize</code> (or <code>resyn demo</code>) and generate the report again.
  {% else %}
    Run <code>{{ data.run_id }}</code> has no keywords yet: nothing was synthesized in it.
  {% endif %}
  </p>
{% else %}

<section id="summary">
  <h2>Summary</h2>
  <div class="numbers">
    <div class="number" data-key="tasks"><span class="value">{{ data.tasks }}</span><span class="label">keywords</span></div>
    {% for status, n in data.stats.tasks.items() %}
    <div class="number" data-key="tasks-{{ status }}"><span class="value">{{ n }}</span><span class="label">keywords {{ status }}</span></div>
    {% endfor %}
    <div class="number" data-key="environments"><span class="value">{{ data.stats.environments }}</span><span class="label">environments</span></div>
    {% for status, n in env_statuses.items() %}
    <div class="number" data-key="env-{{ status }}"><span class="value">{{ n }}</span><span class="label">environments {{ status | replace('_', ' ') }}</span></div>
    {% endfor %}
  </div>
</section>

<section id="funnel">
  <h2>Funnel</h2>
  <p class="muted">Module versions (one per round of a keyword) and how far they got.</p>
  {{ funnel_chart }}
  <p class="funnel-line">
  {% for key, label, count in funnel %}<span class="stage" data-stage="{{ key }}" data-count="{{ count }}">{{ label }} <b>{{ count }}</b></span>{{ ' → ' if not loop.last }}{% endfor %}
  </p>
</section>

<section id="failures">
  <h2>Why candidates failed</h2>
  <h4>Failed checks <span class="muted">(candidates failing each check)</span></h4>
  {% if data.stats.failed_checks %}
  <div id="failed-checks">{{ failed_checks_chart }}</div>
  {% else %}
  <p class="muted" id="failed-checks">No candidate failed a check.</p>
  {% endif %}
  <h4>Outcomes <span class="muted">(candidates by outcome)</span></h4>
  <div id="outcomes">{{ outcomes_chart }}</div>
  <h4 id="judge-rejections">Judge rejections <span class="muted">({{ data.stats.judge_rejected }} rejected, {{ data.stats.judge_errors }} judge errors)</span></h4>
  {% if data.judge_rejections %}
  <table class="judge-rejections">
    <tr><th>keyword</th><th>round</th><th>feedback</th><th>scores</th></tr>
    {% for j in data.judge_rejections %}
    <tr class="judge-rejection" data-candidate-id="{{ j.candidate_id }}">
      <td>{{ j.keyword }}</td>
      <td><a href="#{{ anchor('rev', j.candidate_id) }}">round {{ j.round }}</a></td>
      <td><div class="description">{{ j.feedback or '—' }}</div></td>
      <td>{% for name, score in j.scores.items() %}{{ name }} {{ score }}{{ ', ' if not loop.last }}{% endfor %}</td>
    </tr>
    {% endfor %}
  </table>
  {% else %}
  <p class="muted">The judge rejected nothing.</p>
  {% endif %}
  <h4 id="duplicates">Duplicates skipped <span class="muted">({{ data.duplicates | length }})</span></h4>
  {% if data.duplicates %}
  <table class="duplicates">
    <tr><th>kind</th><th>skipped</th><th>duplicates</th><th class="num">similarity</th></tr>
    {% for d in data.duplicates %}
    <tr class="duplicate" data-kind="{{ d.kind }}">
      <td>{{ d.kind }}</td>
      <td>{% if d.subject in candidate_rounds %}<a href="#{{ anchor('rev', d.subject) }}"><code>{{ d.subject }}</code></a>{% else %}<code>{{ d.subject }}</code>{% endif %}</td>
      <td>{% if d.duplicate_of in env_ids %}<a href="#{{ anchor('env', d.duplicate_of) }}"><code>{{ d.duplicate_of }}</code></a>{% else %}<code>{{ d.duplicate_of }}</code>{% endif %}</td>
      <td class="num">{{ '%.2f' | format(d.similarity) }}</td>
    </tr>
    {% endfor %}
  </table>
  {% else %}
  <p class="muted">No near-duplicates were skipped.</p>
  {% endif %}
</section>

<section id="rounds">
  <h2>Rounds to acceptance</h2>
  {% if data.rounds_to_acceptance %}
  {{ rounds_chart }}
  <p>Mean: <b>{{ '%.2f' | format(data.stats.mean_rounds_to_acceptance or 0) }}</b> rounds per accepted keyword.</p>
  {% else %}
  <p class="muted">No keyword was accepted.</p>
  {% endif %}
</section>

<section id="cost">
  <h2>Cost</h2>
  <div class="numbers">
    <div class="number" data-key="cost-total" data-value="{{ data.stats.cost_usd }}"><span class="value">{{ data.stats.cost_usd | usd }}</span><span class="label">total{% if data.stats.calls_without_cost %} (+ {{ data.stats.calls_without_cost }} calls of unknown cost){% endif %}</span></div>
    <div class="number" data-key="cost-per-environment" data-value="{{ data.stats.cost_per_environment_usd if data.stats.cost_per_environment_usd is not none else '' }}"><span class="value">{{ data.stats.cost_per_environment_usd | usd }}</span><span class="label">per environment</span></div>
    <div class="number" data-key="tokens-in" data-value="{{ data.stats.tokens_in }}"><span class="value">{{ data.stats.tokens_in | thousands }}</span><span class="label">tokens in</span></div>
    <div class="number" data-key="tokens-out" data-value="{{ data.stats.tokens_out }}"><span class="value">{{ data.stats.tokens_out | thousands }}</span><span class="label">tokens out</span></div>
    <div class="number" data-key="calls" data-value="{{ data.stats.calls }}"><span class="value">{{ data.stats.calls }}</span><span class="label">LLM calls ({{ data.stats.failed_calls }} failed)</span></div>
  </div>
</section>

<section id="calibration">
  <h2>Pass rate by difficulty</h2>
  <p class="legend"><span class="swatch" style="background:#4a7bd0"></span>solver pass rate
    <span class="swatch" style="background:#d0674a; margin-left:12px"></span>learnability 4p(1−p), from each environment's latest calibration</p>
  {% if data.environments %}
  <div class="grid">
  {% for env in data.environments %}
    <figure class="calibration" id="{{ anchor('cal', env.env_id) }}" data-env-id="{{ env.env_id }}" data-calibrated="{{ 'true' if env.calibration else 'false' }}">
      <figcaption><a href="#{{ anchor('env', env.env_id) }}">{{ env.name }}</a> <span class="badge {{ env.status }}">{{ env.status | replace('_', ' ') }}</span>
      {% if env.calibration %}<br><span class="muted">learnability <b class="learnability">{{ '%.2f' | format(env.calibration.learnability) }}</b> · solver {{ env.calibration.solver_model }} · {{ env.calibration.instances_per_level }}×{{ env.calibration.attempts_per_instance }} attempts per level</span>{% endif %}
      </figcaption>
      {% if env.calibration %}
      {{ pass_rate_chart(env.calibration.levels, title='pass rate by difficulty: ' ~ env.env_id) }}
      {% else %}
      <p class="not-calibrated muted">not calibrated</p>
      {% endif %}
    </figure>
  {% endfor %}
  </div>
  {% else %}
  <p class="muted">No environments.</p>
  {% endif %}
</section>

{% macro revision_chain(revisions) %}
  {% if revisions %}
  <ol class="revisions">
  {% for rev in revisions %}
    <li class="revision" id="{{ anchor('rev', rev.candidate_id) }}" data-candidate-id="{{ rev.candidate_id }}" data-round="{{ rev.round }}" data-outcome="{{ rev.outcome or 'in_progress' }}">
      <b>round {{ rev.round }}</b> <code title="{{ rev.candidate_id }}">{{ rev.candidate_id | short }}</code>
      <span class="badge {{ rev.outcome or 'in_progress' }}">{{ (rev.outcome or 'in progress') | replace('_', ' ') }}</span>
      {% if rev.reason and rev.outcome != 'accepted' %}<span class="reason">{{ rev.reason }}</span>{% endif %}
      <span class="links">
      {% if rev.parent_id %}{% if rev.parent_id in candidate_rounds %}<a class="parent-link" href="#{{ anchor('rev', rev.parent_id) }}">← revises round {{ candidate_rounds[rev.parent_id] }}</a>{% else %}<span class="muted">revises <code>{{ rev.parent_id | short }}</code></span>{% endif %}{% endif %}
      {% for child in rev.children %}{% if child in candidate_rounds %}<a class="child-link" href="#{{ anchor('rev', child) }}">revised in round {{ candidate_rounds[child] }} →</a>{% endif %}{% endfor %}
      <a class="checks-link" href="#{{ anchor('checks', rev.candidate_id) }}">{{ rev | checks_label }}</a>
      </span>
    </li>
  {% endfor %}
  </ol>
  {% for rev in revisions %}
  <div class="round-details" id="{{ anchor('checks', rev.candidate_id) }}" data-candidate-id="{{ rev.candidate_id }}" data-failures="{{ rev.failures | length }}">
    <h5>Round {{ rev.round }}: {{ rev | checks_label }} <a href="#{{ anchor('rev', rev.candidate_id) }}">↑</a></h5>
    {% if not rev.extracted %}
    <p class="muted">{{ rev.reason or 'No module was extracted from the answer.' }}</p>
    {% elif not rev.checked %}
    <p class="muted">No check report stored (the round did not finish).</p>
    {% endif %}
    {% for f in rev.failures %}
    <div class="check-failure" data-check="{{ f.name }}"><span class="name">{{ f.name }}</span>: {{ f.summary }}
      {% for ev in f.evidence %}<pre class="evidence">{{ ev }}</pre>{% endfor %}
    </div>
    {% endfor %}
    {% for f in rev.warnings %}
    <div class="check-warning" data-check="{{ f.name }}"><span class="name">{{ f.name }} (warning)</span>: {{ f.summary }}</div>
    {% endfor %}
    {% if rev.verdict %}
    <div class="verdict" data-accept="{{ rev.verdict.accept | lower if rev.verdict.accept is not none else 'none' }}">
      <b>judge:</b> {% if rev.verdict.accept is none %}no valid verdict{% if rev.verdict.error %} ({{ rev.verdict.error }}){% endif %}{% elif rev.verdict.accept %}accepted{% else %}rejected{% endif %}
      {% if rev.verdict.scores %}<span class="muted"> — {% for name, score in rev.verdict.scores.items() %}{{ name }} {{ score }}{{ ', ' if not loop.last }}{% endfor %}</span>{% endif %}
      {% if rev.verdict.feedback %}<pre class="feedback">{{ rev.verdict.feedback }}</pre>{% endif %}
    </div>
    {% endif %}
  </div>
  {% endfor %}
  {% else %}
  <p class="muted">No rounds recorded.</p>
  {% endif %}
{% endmacro %}

<section id="environments">
  <h2>Environments <span class="muted">({{ data.environments | length }})</span></h2>
  {% if not data.environments %}<p class="muted">No environment was accepted.</p>{% endif %}
  {% for env in data.environments %}
  <article class="env-card" id="{{ anchor('env', env.env_id) }}" data-env-id="{{ env.env_id }}" data-status="{{ env.status }}">
    <header><h3>{{ env.name }}</h3> <code class="env-id">{{ env.env_id }}</code>
      <span class="badge {{ env.status }}" title="{{ status_help[env.status] }}">{{ env.status | replace('_', ' ') }}</span></header>
    <dl class="facts">
      <dt>keyword</dt><dd class="keyword">{{ env.keyword }}</dd>
      <dt>status</dt><dd class="status">{{ status_help[env.status] }}</dd>
      <dt>levels</dt><dd>1..{{ env.max_difficulty }}</dd>
      <dt>gold answers</dt><dd>{{ 'yes' if env.has_solution else 'no (verifier only)' }}</dd>
      <dt>run</dt><dd><code>{{ env.run_id }}</code></dd>
      <dt>accepted</dt><dd>{{ env.created_at | when }} after {{ env.revisions | length }} round{{ '' if env.revisions | length == 1 else 's' }}</dd>
      <dt>calibration</dt><dd>{% if env.calibration %}learnability {{ '%.2f' | format(env.calibration.learnability) }}, solver {{ env.calibration.solver_model }} — <a class="calibration-link" href="#{{ anchor('cal', env.env_id) }}">pass rate by level</a>{% else %}<span class="not-calibrated">not calibrated</span>{% endif %}</dd>
    </dl>
    {% if env.description %}<p class="description">{{ env.description | cleandoc }}</p>{% endif %}
    {% if env.judge_scores %}
    <h4>Judge scores</h4>
    <table class="scores">
    {% for name, score in env.judge_scores.items() %}
      <tr data-score="{{ name }}"><td>{{ name | replace('_', ' ') }}</td><td>{{ score_bar(score) }}</td><td>{{ score }}/5</td></tr>
    {% endfor %}
    </table>
    {% endif %}
    <h4>Sample questions <span class="muted">({{ env.samples | length }})</span></h4>
    {% if env.samples %}
    <ol class="samples">
    {% for s in env.samples %}
      <li class="sample" data-difficulty="{{ s.difficulty if s.difficulty is not none else '' }}">
        <span class="muted">level {{ s.difficulty if s.difficulty is not none else '?' }}, seed {{ s.seed if s.seed is not none else '?' }}</span>
        <pre class="question">{{ s.question }}</pre>
        <div>gold answer: {% if s.gold is not none %}<code class="gold">{{ s.gold }}</code>{% else %}<span class="muted">none (verifier only)</span>{% endif %}</div>
      </li>
    {% endfor %}
    </ol>
    {% else %}
    <p class="muted">No samples stored.</p>
    {% endif %}
    <h4>Revisions</h4>
    {{ revision_chain(env.revisions) }}
    <details class="code"><summary>module code ({{ env.code.splitlines() | length }} line{{ '' if env.code.splitlines() | length == 1 else 's' }})</summary><pre><code>{{ env.code }}</code></pre></details>
  </article>
  {% endfor %}
</section>

<section id="rejected">
  <h2>Rejected keywords <span class="muted">({{ data.rejected | length }})</span></h2>
  {% if not data.rejected %}<p class="muted">No keyword was rejected.</p>{% endif %}
  {% for task in data.rejected %}
  <article class="task-card" id="{{ anchor('task', task.task_id) }}" data-task-id="{{ task.task_id }}" data-status="{{ task.status }}">
    <header><h3 class="keyword">{{ task.keyword }}</h3> <span class="badge rejected">rejected after {{ task.rounds }} round{{ '' if task.rounds == 1 else 's' }}</span></header>
    <p>last reason: <span class="last-reason">{{ task.reason or 'unknown' }}</span></p>
    {{ revision_chain(task.revisions) }}
  </article>
  {% endfor %}
  {% if data.unfinished %}
  <h2 id="unfinished">Unfinished keywords <span class="muted">({{ data.unfinished | length }}; retried when the run resumes)</span></h2>
  {% for task in data.unfinished %}
  <article class="task-card" id="{{ anchor('task', task.task_id) }}" data-task-id="{{ task.task_id }}" data-status="{{ task.status }}">
    <header><h3 class="keyword">{{ task.keyword }}</h3> <span class="badge {{ task.status }}">{{ task.status }}</span></header>
    {% if task.reason %}<p>last reason: <span class="last-reason">{{ task.reason }}</span></p>{% endif %}
    {{ revision_chain(task.revisions) }}
  </article>
  {% endfor %}
  {% endif %}
</section>
{% endif %}
</main>
<footer>resyn report · one self-contained page: no scripts, no network, nothing to load.</footer>
</body>
</html>
"""
