"""The page on a desktop viewport with the fake camera: boot, preview, answers, stop, continuous mode."""

from __future__ import annotations

import statistics

import pytest
from e2e_support import ANSWER_TIMEOUT_MS, needs_numpy

STAGES_BEFORE_NUMPY = ("manifest", "pyodide", "wheel")


@pytest.fixture(scope="module")
def app(site, open_app):
    app = open_app(site.url)
    app.boot = app.wait_boot()
    return app


def stage_bytes(app) -> dict:
    """Largest `loaded` reported per loading stage."""
    seen = {}
    for event in app.page.evaluate("window.tinyVLM.progress"):
        seen[event["stage"]] = max(seen.get(event["stage"], 0), event["loaded"])
    return seen


def test_boots_pyodide_and_installs_the_wheel(site, app):
    seen = stage_bytes(app)
    for stage in STAGES_BEFORE_NUMPY:
        assert stage in seen, f"no progress for stage {stage!r}: {seen}"
    assert seen["pyodide"] > 5_000_000, "pyodide progress should count the core's bytes"
    assert seen["wheel"] == site.manifest["files"][site.manifest["wheel"]]["bytes"]
    if not site.numpy_local:
        # Without a local NumPy the worker goes to the CDN, which tests never reach:
        # the page must say so plainly.
        assert "NumPy" in app.boot, app.boot
        pytest.skip(site.numpy_reason)
    assert app.boot == "ready"
    info = app.page.evaluate("window.tinyVLM.client.info")
    assert info["pyodide"] == "314.0.4"
    assert info["numpy"]["source"] == "local"
    assert info["crossOriginIsolated"] is True, "serve.py sends COOP/COEP"
    assert seen["model"] == sum(site.manifest["files"][p]["bytes"] for p in site.manifest["model"]["files"])
    assert app.page.text_content("[data-testid=status]").startswith("Ready")
    assert app.page.is_enabled("[data-testid=start]")


def test_page_has_no_console_errors(site, app):
    errors = app.errors
    if not site.numpy_local:  # the CDN is unreachable in tests by design (checked above)
        print("console errors with NumPy unavailable:", errors)
        errors = [e for e in errors if "cdn.jsdelivr.net" not in e]
    assert errors == []


def test_the_page_says_what_the_model_can_see(site, app):
    needs_numpy(site)
    if not site.labels:
        pytest.skip("the site's model has no labels.json: the panel has no list to show")
    from tiny_vlm.weights import load_weights

    page = app.page
    page.wait_for_function("!document.querySelector('[data-testid=label-list]').hidden")  # labels.json comes after ready
    assert page.is_visible("[data-testid=about-model]")
    assert page.locator("#about-summary").bounding_box()["height"] >= 44  # a touch-sized target
    assert page.text_content("#about-summary") == f"What can it see? ({len(site.labels)} objects)"
    items = page.text_content("[data-testid=label-list]").split(" · ")
    assert items == [f"{label['emoji']} {label['name']}" for label in site.labels]
    about = load_weights(site.path / "model" / "model.safetensors").metadata.get("about")
    assert page.evaluate("window.tinyVLM.client.info.model.about") == about
    if about is None:
        assert page.is_hidden("[data-testid=about-text]")
        return
    page.click("#about-summary")  # opens the panel
    assert page.is_visible("[data-testid=about-text]")
    assert page.text_content("[data-testid=about-text]") == about
    page.click("#about-summary")  # and closes it again for the tests after this one


def test_camera_preview_appears(app):
    video = app.page.locator("[data-testid=preview]")
    video.wait_for(state="visible")
    app.page.wait_for_function("document.querySelector('[data-testid=preview]').videoWidth > 0")
    size = app.page.evaluate("(v => [v.videoWidth, v.videoHeight])(document.querySelector('[data-testid=preview]'))")
    assert size == [640, 480]
    assert app.page.is_hidden("[data-testid=camera-message]")


def answer(app, timeout=ANSWER_TIMEOUT_MS) -> dict:
    before = app.page.evaluate("window.tinyVLM.answers")
    app.page.click("[data-testid=start]")
    app.page.wait_for_function(f"window.tinyVLM.answers > {before} && !window.tinyVLM.running", timeout=timeout)
    return app.page.evaluate("window.tinyVLM.lastResult")


def test_answer_streams_with_stats(site, app, latency):
    needs_numpy(site)
    app.page.fill("[data-testid=prompt]", "Describe this image.")
    app.page.evaluate("""() => { window.__tokens = 0;
        new MutationObserver(() => window.__tokens++).observe(document.querySelector('[data-testid=answer]'), {childList: true, characterData: true, subtree: true}); }""")
    result = answer(app)
    assert result["reason"] in ("eos", "length")
    assert result["text"].strip(), result
    assert app.page.text_content("[data-testid=answer]") == result["text"]
    assert app.page.evaluate("window.__tokens") >= 2, "the answer should stream in token by token"
    stats = result["stats"]
    for key in ("preprocess_ms", "encode_ms", "prefill_ms", "ttft_ms", "decode_ms_per_token", "tokens"):
        assert key in stats, stats
    shown = app.page.text_content("[data-testid=stats]")
    assert "TTFT" in shown and "ms/token" in shown and f"{stats['tokens']} tokens" in shown
    info = app.page.evaluate("window.tinyVLM.client.info")
    latency.update(browser="chromium " + app.context.browser.version, model=info["model"]["name"],
                   model_dir=info["model"]["dir"], backend=info["model"]["backend"], **{f"{k}": v for k, v in info["timings"].items()},
                   first_answer=result["text"], first_stats=stats)


NUMBER_WORDS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

def describe_items(text: str, labels: list[dict]) -> list[str]:
    """Class names in a describe answer ("a dog, two apples and a car"); ValueError if off-grammar."""
    names = {label["name"]: label["name"] for label in labels}
    plurals = {label["plural"]: label["name"] for label in labels}
    head, _, last = text.strip().rpartition(" and ")
    parts = ([p for p in head.split(", ")] if head else []) + [last]
    items = []
    for part in parts:
        article, _, noun = part.partition(" ")
        if article in ("a", "an") and noun in names:
            items.append(names[noun])
        elif article in NUMBER_WORDS and noun in plurals:
            items.append(plurals[noun])
        else:
            raise ValueError(f"{part!r} in {text!r} is not '<a|an> <name>' or '<number> <plural>' of labels.json")
    return items


def test_answer_is_a_description_in_the_model_grammar(site, app):
    needs_numpy(site)
    if site.labels is None:
        pytest.skip("the model has no labels.json (random plumbing model): the answer grammar is not checked")
    app.page.fill("[data-testid=prompt]", "Describe this image.")
    text = answer(app)["text"]
    assert describe_items(text, site.labels), text


def test_answer_names_the_scene_objects(site, app, scene_files):
    """The camera shows two known objects (Noto drawings, left to right): the description names exactly them."""
    needs_numpy(site)
    if site.labels is None:
        pytest.skip("the model has no labels.json (random plumbing model): object names not checked")
    app.page.fill("[data-testid=prompt]", "Describe this image.")
    text = answer(app)["text"]
    assert describe_items(text, site.labels) == [obj["name"] for obj in scene_files["objects"]], text


def test_count_and_presence_answers_follow_the_question(site, app, scene_files):
    """One frame, several questions: the answer depends on the question's object, not only on the image."""
    needs_numpy(site)
    if site.labels is None:
        pytest.skip("the model has no labels.json (random plumbing model): answers not checked")
    shown = scene_files["objects"]
    absent = next(label for label in site.labels if label["name"] not in {o["name"] for o in shown} and label["name"] in ("car", "guitar", "banana"))
    asked = {}
    for question in (f"How many {shown[0]['plural']} are there?", f"How many {absent['plural']} are there?",
                     f"Is there {article(shown[1]['name'])} {shown[1]['name']}?", f"Is there {article(absent['name'])} {absent['name']}?"):
        app.page.fill("[data-testid=prompt]", question)
        asked[question] = answer(app)["text"].strip()
    assert list(asked.values()) == ["one", "zero", "yes", "no"], asked


def article(name: str) -> str:
    return "an" if name[0] in "aeiou" else "a"


def test_stop_mid_answer(site, app):
    needs_numpy(site)
    result = app.page.evaluate("""async () => {
        const vlm = window.tinyVLM.client;
        const image = new ImageData(64, 64); image.data.fill(128);
        const abort = new AbortController();
        let tokens = 0;
        // A trained model answers in a few tokens, faster than a stop can travel; sampling at
        // a very high temperature makes EOS about 1 in V per step, so the answer runs long.
        const r = await vlm.infer(image, "Describe this image.", {maxTokens: 64, signal: abort.signal,
            temperature: 50, seed: 7, onToken: () => { tokens++; abort.abort(); }});
        return {...r, tokensSeen: tokens};
    }""")
    assert result["reason"] == "stopped", result
    assert 1 <= result["tokensSeen"] < 64
    # and the worker is free again: a busy check, then a normal answer
    busy = app.page.evaluate("""async () => {
        const vlm = window.tinyVLM.client;
        const image = new ImageData(32, 32);
        const first = vlm.infer(image, "Describe this image.", {maxTokens: 4});
        const second = await vlm.infer(image, "Describe this image.").then(() => "no error", e => e.code);
        await first;
        return second;
    }""")
    assert busy == "busy"


def test_continuous_mode_20_answers(site, app, latency):
    needs_numpy(site)
    page = app.page
    page.fill("[data-testid=prompt]", "Describe this image.")
    start = page.evaluate("window.tinyVLM.answers")
    page.check("[data-testid=continuous]")
    page.click("[data-testid=start]")
    page.wait_for_function(f"window.tinyVLM.answers >= {start + 20}", timeout=20 * ANSWER_TIMEOUT_MS // 4)
    page.click("[data-testid=stop]")
    page.wait_for_function("!window.tinyVLM.running", timeout=ANSWER_TIMEOUT_MS)
    page.uncheck("[data-testid=continuous]")
    assert page.is_hidden("[data-testid=error]"), page.text_content("[data-testid=error]")
    assert page.text_content("[data-testid=status]") in ("Stopped.", "Done.")
    history = page.evaluate("window.tinyVLM.history")[-(page.evaluate("window.tinyVLM.answers") - start):]
    assert len(history) >= 20
    finished = [h for h in history if h["reason"] != "stopped"]
    assert len(finished) >= 20
    assert app.errors == []
    latency.update(
        continuous_answers=len(history),
        ttft_ms_median=statistics.median(h["stats"]["ttft_ms"] for h in finished),
        decode_ms_per_token_median=statistics.median(h["stats"]["decode_ms_per_token"] for h in finished),
        tokens_median=statistics.median(h["stats"]["tokens"] for h in finished),
        wall_ms_median=statistics.median(h["stats"]["wall_ms"] for h in finished),
    )


def test_python_errors_reach_the_caller_and_the_worker_recovers(site, app):
    needs_numpy(site)
    outcome = app.page.evaluate("""async () => {
        const vlm = window.tinyVLM.client;
        const image = new ImageData(16, 16);
        const failed = (e) => ({code: e.code, message: e.message});
        const hot = await vlm.infer(image, "Describe this image.", {temperature: "hot"}).then(() => null, failed);
        const long = await vlm.infer(image, "dog ".repeat(300), {}).then(() => null, failed);  // Python refuses it
        const good = await vlm.infer(image, "Describe this image.", {maxTokens: 3});
        return {hot, long, good: good.reason};
    }""")
    assert outcome["hot"] == {"code": "bad_request", "message": "generate: `params.temperature` must be a finite number >= 0, got hot"}
    assert outcome["long"]["code"] == "bad_request" and "leaves no room to generate" in outcome["long"]["message"]
    assert outcome["good"] in ("eos", "length")  # and the worker recovered


def test_raw_worker_protocol(site, app):
    """The worker itself, without client.js: ids echoed, not_ready, busy, bad requests, stop."""
    needs_numpy(site)
    log = app.page.evaluate("""async () => {
        const P = await import("./protocol.js");
        const worker = new Worker("worker.js", {type: "module"});
        const seen = [];
        const waiters = [];
        worker.onmessage = (e) => { if (e.data.type !== "progress") seen.push(e.data); waiters.forEach(w => w()); };
        const until = (f) => new Promise(resolve => { const check = () => f() && resolve(); waiters.push(check); check(); });
        const image = () => ({width: 8, height: 8, rgba: new Uint8Array(256).buffer});
        worker.postMessage(P.generate(1, "Describe this image.", image(), {}));  // before init
        worker.postMessage({type: "dance", id: 2});
        await until(() => seen.length >= 2);
        worker.postMessage(P.init({manifest: new URL("manifest.json", location).href, pyodideIndex: new URL("pyodide/", location).href}));
        await until(() => seen.some(m => m.type === "ready" || m.type === "error" && m.id === null));
        worker.postMessage(P.generate(3, "Describe this image.", {width: 8, height: 8, rgba: new ArrayBuffer(5)}, {}));
        worker.postMessage(P.generate(6, "Describe this image.", {width: 8192, height: 8192, rgba: new ArrayBuffer(0)}, {}));
        worker.postMessage(P.generate(4, "Describe this image.", image(), {maxTokens: 50}));
        worker.postMessage(P.generate(5, "Describe this image.", image(), {}));   // while 4 runs
        worker.postMessage(P.stop(4));
        await until(() => seen.some(m => m.type === "done" && m.id === 4));
        // pixels as 32-bit words: the worker reads their bytes (256 of them), not 64 converted values
        worker.postMessage(P.generate(7, "Describe this image.", {width: 8, height: 8, rgba: new Uint32Array(64).fill(0xff808080)}, {maxTokens: 2}));
        await until(() => seen.some(m => (m.type === "done" || m.type === "error") && m.id === 7));
        worker.terminate();
        return seen.map(m => ({type: m.type, id: m.id, code: m.code, reason: m.reason, message: m.message}));
    }""")
    by_id = {}
    for m in log:
        by_id.setdefault(m["id"], []).append(m)
    assert by_id[1] == [{"type": "error", "id": 1, "code": "not_ready", "reason": None,
                         "message": "generate: the model is not loaded yet (worker is idle)"}]
    assert by_id[2][0]["code"] == "bad_request" and "dance" in by_id[2][0]["message"]
    assert [m["type"] for m in log if m["id"] is None] == ["ready"]
    assert by_id[3][0]["code"] == "bad_request" and "5 bytes" in by_id[3][0]["message"]
    assert by_id[6][0]["code"] == "bad_request" and "at most 16777216" in by_id[6][0]["message"]
    assert by_id[7][-1]["type"] == "done" and by_id[7][-1]["reason"] in ("eos", "length"), by_id[7]
    assert by_id[5][0]["code"] == "busy"
    assert by_id[4][-1]["type"] == "done" and by_id[4][-1]["reason"] == "stopped"
    assert all(m["type"] == "token" for m in by_id[4][:-1])
