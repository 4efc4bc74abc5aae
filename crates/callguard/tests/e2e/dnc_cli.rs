//! The operator CLI around outbound compliance and the data directory (issue #10): a call list
//! without a header has every line checked; what the scrub writes cannot run as a spreadsheet
//! formula; commands other than `serve` and `demo` refuse a data directory that does not exist;
//! the demo keeps its data where it is told to and says so.

use crate::harness::{Backend, Deployment, Ran, Server, BIN};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `callguard dnc import FILE` of `numbers`; panics unless it succeeds.
fn import(server: &Server, numbers: &str) -> Ran {
    let file = server
        .root()
        .join(format!("registry-{}.txt", crate::harness::suffix()));
    std::fs::write(&file, numbers).unwrap();
    let ran = server.cli(&["dnc", "import", file.to_str().unwrap()]);
    assert!(ran.status.success(), "{}", ran.describe());
    ran
}

/// `callguard dnc scrub` of `list`: (kept, removed) as written.
fn scrub(server: &Server, name: &str, list: &str, extra: &[&str]) -> (String, String) {
    let input = server.root().join(format!("{name}.csv"));
    std::fs::write(&input, list).unwrap();
    let out = server.root().join(format!("{name}.ok.csv"));
    let report = server.root().join(format!("{name}.removed.csv"));
    let mut args = vec![
        "dnc",
        "scrub",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let ran = server.cli(&args);
    assert!(ran.status.success(), "{}", ran.describe());
    (
        std::fs::read_to_string(&out).unwrap(),
        std::fs::read_to_string(&report).unwrap(),
    )
}

both_backends!(a_call_list_without_a_header_has_its_first_line_checked_like_every_other);

async fn a_call_list_without_a_header_has_its_first_line_checked_like_every_other(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    // A registry whose first line is a number behind a byte-order mark: still a number.
    let imported = import(&server, "\u{feff}2025550123\n3035550100\n");
    assert!(
        imported.stdout.starts_with("imported 2 numbers"),
        "{}",
        imported.describe()
    );

    // One number per line, the registered one first: it must not reach the callable list.
    let (kept, removed) = scrub(
        &server,
        "bare",
        "+1 202 555 0123\n+1 212 555 0100\n303-555-0100\n",
        &[],
    );
    assert_eq!(kept, "+12125550100\n");
    assert_eq!(
        removed,
        "+12025550123,national_dnc\n+13035550100,national_dnc\n"
    );

    // Several columns, no header: the number column is the one holding a number.
    let (kept, removed) = scrub(
        &server,
        "wide",
        "Ada,2025550123,vip\nBo,2125550100,x\n",
        &[],
    );
    assert_eq!(kept, "Bo,+12125550100,x\n");
    assert_eq!(removed, "Ada,+12025550123,vip,national_dnc\n");

    // A header is still a header, whichever column holds the number.
    let (kept, removed) = scrub(
        &server,
        "named",
        "name,phone\nAda,2025550123\nBo,2125550100\n",
        &[],
    );
    assert_eq!(kept, "name,phone\nBo,+12125550100\n");
    assert_eq!(
        removed,
        "name,phone,removed_because\nAda,+12025550123,national_dnc\n"
    );

    // A column given by index on a headerless list: line 1 is checked too.
    let (kept, removed) = scrub(
        &server,
        "indexed",
        "2025550123,Telford\n2125550100,Tel Aviv\n",
        &["--column", "1"],
    );
    assert_eq!(kept, "+12125550100,Tel Aviv\n");
    assert_eq!(removed, "+12025550123,Telford,national_dnc\n");

    // A first line that is neither a header nor a valid number is a bad row, not a header.
    let (kept, removed) = scrub(&server, "garbled", "202-555-O123\n2125550100\n", &[]);
    assert_eq!(kept, "+12125550100\n");
    assert_eq!(removed, "202-555-O123,invalid_number\n");

    // A column cannot be named on a list that has no header.
    let input = server.root().join("bare.csv");
    let refused = server.cli(&[
        "dnc",
        "scrub",
        input.to_str().unwrap(),
        "--out",
        server.root().join("x.csv").to_str().unwrap(),
        "--column",
        "phone",
    ]);
    assert!(!refused.status.success(), "{}", refused.describe());
    assert!(
        refused.stderr.contains("--column") && !refused.stderr.contains("555"),
        "{}",
        refused.describe()
    );
}

both_backends!(spreadsheet_formulas_in_a_call_list_cannot_run_from_the_scrub_outputs);

async fn spreadsheet_formulas_in_a_call_list_cannot_run_from_the_scrub_outputs(backend: Backend) {
    let server = Server::start(backend).await;
    import(&server, "2025550123\n");
    let list = concat!(
        "name,phone,=notes\n",
        "\"=HYPERLINK(\"\"http://evil.example\"\")\",+1 212 555 0100,+SUM(1;2)\n",
        "-2+3,+48 601 234 567,@SUM(A1)\n",
        "\"\tTab\",2125550101,\"\r=1+1\"\n",
        "Ada,+1 202 555 0123,\"a;=cmd|' /C calc'!A0\"\n",
        "Bo,=1+1,ok\n",
        "Cy, =2+2,plain\n",
    );
    let (kept, removed) = scrub(&server, "formulas", list, &[]);
    assert_eq!(
        kept,
        concat!(
            "name,phone,'=notes\n",
            // The number column holds the checked E.164 number: '+' and digits only.
            "\"'=HYPERLINK(\"\"http://evil.example\"\")\",+12125550100,\"'+SUM(1;2)\"\n",
            "'-2+3,+48601234567,'@SUM(A1)\n",
            "\"'\tTab\",+12125550101,\"'\r=1+1\"\n",
        )
    );
    assert_eq!(
        removed,
        concat!(
            "name,phone,'=notes,removed_because\n",
            "Ada,+12025550123,\"a;=cmd|' /C calc'!A0\",national_dnc\n",
            "Bo,'=1+1,ok,invalid_number\n",
            "Cy,' =2+2,plain,invalid_number\n",
        )
    );
    // No cell of either file, as a spreadsheet splits it, starts a formula.
    for text in [&kept, &removed] {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        for record in rdr.records() {
            for cell in record.unwrap().iter() {
                let number = cell.starts_with('+') && cell[1..].bytes().all(|b| b.is_ascii_digit());
                assert!(
                    number || !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{cell:?} in {text}"
                );
            }
        }
    }
    let help = server.cli(&["dnc", "scrub", "--help"]);
    assert!(
        help.stdout.contains("formula") && help.stdout.contains("E.164"),
        "{}",
        help.describe()
    );
}

both_backends!(commands_refuse_a_data_directory_that_does_not_exist_and_create_nothing);

async fn commands_refuse_a_data_directory_that_does_not_exist_and_create_nothing(backend: Backend) {
    let deployment = Deployment::new(backend);
    let list = deployment.root().join("list.csv");
    std::fs::write(&list, "2025550123\n").unwrap();
    let list = list.to_str().unwrap();
    let out = deployment.root().join("out.csv");
    let export = deployment.root().join("audit.jsonl");
    let commands: [&[&str]; 10] = [
        &["customer", "invite", "123456789012"],
        &["user", "add", "ursula", "--role", "admin"],
        &["user", "list"],
        &["user", "unlock", "ursula"],
        &["user", "reset", "ursula"],
        &["keys", "rotate"],
        &["audit", "verify"],
        &["audit", "export", "--out", export.to_str().unwrap()],
        &["dnc", "import", list],
        &["dnc", "scrub", list, "--out", out.to_str().unwrap()],
    ];
    for args in commands {
        let ran = deployment.cli(args);
        assert!(!ran.status.success(), "{args:?}: {}", ran.describe());
        let shown = deployment.data_dir.display().to_string();
        assert!(
            ran.stderr.contains(&shown)
                && ran.stderr.contains("does not exist")
                && ran.stderr.contains("callguard serve")
                && ran.stderr.contains("CALLGUARD_DATA_DIR"),
            "{args:?}: {}",
            ran.describe()
        );
        assert!(
            !deployment.data_dir.exists(),
            "{args:?} created {shown}: {}",
            ran.describe()
        );
        assert!(!out.exists() && !export.exists(), "{args:?} wrote output");
    }
    // Once `serve` has created it, the same commands work.
    let server = Server::start_with(deployment, &[]).await;
    let ran = server.cli(&["user", "list"]);
    assert!(ran.status.success(), "{}", ran.describe());
}

/// `callguard demo ARGS` with `env`, stopped once its banner is complete: the banner.
fn demo_banner(deployment: &Deployment, args: &[&str], env: &[(&str, &str)]) -> String {
    let banner = deployment
        .root()
        .join(format!("demo-{}.stdout", crate::harness::suffix()));
    let errors = banner.with_extension("stderr");
    let mut cmd = deployment.command(&[&["demo"][..], args].concat());
    cmd.env_remove("CALLGUARD_DATA_DIR");
    cmd.envs(env.iter().copied());
    cmd.stdout(std::fs::File::create(&banner).unwrap());
    cmd.stderr(std::fs::File::create(&errors).unwrap());
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&banner).unwrap_or_default();
        // The banner closes with a line of '=' only.
        if text
            .lines()
            .any(|l| l.len() > 10 && l.bytes().all(|b| b == b'='))
        {
            break text;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the demo exited with {status}: {text}\n{}",
                std::fs::read_to_string(&errors).unwrap_or_default()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no complete demo banner: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    text
}

fn holds_a_demo(dir: &Path) -> bool {
    dir.join("keys").join("kek").exists()
}

#[test]
fn the_demo_keeps_its_data_in_callguard_data_dir_unless_told_otherwise_and_says_so() {
    let deployment = Deployment::new(Backend::Sqlite);
    let from_env = deployment.root().join("demo-from-env");
    let from_flag = deployment.root().join("demo-from-flag");

    let banner = demo_banner(
        &deployment,
        &[],
        &[("CALLGUARD_DATA_DIR", from_env.to_str().unwrap())],
    );
    assert!(holds_a_demo(&from_env), "{banner}");
    assert!(
        banner.contains(&format!("Data directory: {}", from_env.display()))
            && banner.contains("not removed"),
        "{banner}"
    );
    // Every page has something to show: every demo customer is invited to the portal, and a
    // sample Do-Not-Call registry is loaded.
    assert_eq!(
        banner.matches("portal: open /portal/setup").count(),
        3,
        "{banner}"
    );
    assert!(banner.contains("sample registry of 20 numbers"), "{banner}");

    // --data-dir is the stronger setting.
    let banner = demo_banner(
        &deployment,
        &["--data-dir", from_flag.to_str().unwrap()],
        &[("CALLGUARD_DATA_DIR", from_env.to_str().unwrap())],
    );
    assert!(holds_a_demo(&from_flag), "{banner}");
    assert!(
        banner.contains(&format!("Data directory: {}", from_flag.display())),
        "{banner}"
    );

    let help = Command::new(BIN)
        .args(["demo", "--help"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("CALLGUARD_DATA_DIR") && help.contains("not removed"),
        "{help}"
    );
}

#[tokio::test]
async fn the_demo_refuses_a_data_directory_that_holds_a_real_instance() {
    // An operator's shell exports CALLGUARD_DATA_DIR for the real instance; the demo would add
    // accounts with published passwords to it.
    let server = Server::start(Backend::Sqlite).await;
    server.add_user("real-admin", "admin");
    let deployment = server.stop_keeping_data();
    let mut cmd = deployment.command(&["demo"]);
    cmd.env("CALLGUARD_DATA_DIR", &deployment.data_dir);
    let ran = deployment.run(cmd);
    assert!(!ran.status.success(), "{}", ran.describe());
    assert!(
        ran.stderr.contains("--data-dir") && ran.stderr.contains("demo"),
        "{}",
        ran.describe()
    );
    let users = deployment.cli(&["user", "list"]);
    assert!(users.status.success(), "{}", users.describe());
    assert!(!users.stdout.contains("demo-admin"), "{}", users.stdout);
}
