"""Regression: a live anonymous result that read the identity must not answer another user."""

import convex_notebook as cn


def test_live_anonymous_result_is_not_shared_with_a_signed_in_user() -> None:
    app = cn.Backend(echo_logs=False)

    @app.query
    def whoami(ctx):
        identity = ctx.auth.get_user_identity()
        return identity and identity["subject"]

    @app.query
    def constant(ctx):
        return 1

    anonymous = app.subscribe("whoami")
    assert anonymous.value is None
    assert app.with_identity({"subject": "u9"}).query("whoami") == "u9"
    assert app.with_identity({"subject": "u9"}).subscribe("whoami").value == "u9"
    # A result that never looked at the identity is still shared.
    app.subscribe("constant")
    hits = app.reactivity.cache_hits
    assert app.with_identity({"subject": "u9"}).query("constant") == 1
    assert app.reactivity.cache_hits == hits + 1
    app.close()
