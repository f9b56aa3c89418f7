//! The README's walk-through works as written: its shell blocks run, in order, with bash, curl and
//! jq, against `wasmail serve` started as a user would start it (no admin token: it prints one).

use crate::helpers::*;
use std::process::Command;

fn walkthrough_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let start = readme
        .find("<!-- walkthrough")
        .expect("walk-through start marker");
    let end = readme
        .find("<!-- /walkthrough -->")
        .expect("walk-through end marker");
    readme[start..end]
        .split("```sh\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_works_as_written() {
    let blocks = walkthrough_blocks();
    assert!(blocks.len() >= 8, "{} blocks", blocks.len());
    let dir = test_dir();
    let mut server = start_with(dir.path(), None).await;
    let admin = server
        .printed_admin_token
        .clone()
        .expect("a fresh data dir prints its admin token");
    // The first block sets the server address and the printed token; ours are on port 0.
    let mut script = blocks[0].clone();
    script.push_str(&format!(
        "export WASMAIL={} ADMIN={admin}\n",
        server.app.base
    ));
    for block in &blocks[1..] {
        script.push_str(block);
    }
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run bash (with curl and jq)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the walk-through failed:\n{stdout}\n{stderr}"
    );

    // What a reader is told to expect.
    assert!(
        stdout.contains("\"world\": \"wasmail:plugin/filter@0.1.0\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"ok\": true"),
        "the dry run succeeded: {stdout}"
    );
    assert!(stdout.contains("\"status\": \"completed\""), "{stdout}");
    assert!(
        stdout.contains("\"ok\": 8"),
        "all eight samples processed: {stdout}"
    );
    let billing: Vec<_> = stdout
        .lines()
        .filter(|l| l.starts_with("Billing"))
        .collect();
    assert!(
        billing.len() >= 2 && billing.iter().all(|l| l.contains("billing")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("Junk") && l.contains("$Junk") && l.contains("URGENT")),
        "{stdout}"
    );
    signal(&server.child, "TERM");
    server.child.wait().expect("exit");
}
