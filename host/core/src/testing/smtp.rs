//! The real SMTP server the tests send to (aiosmtpd, `tests/smtp_server.py`), with a
//! private CA for its TLS.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};

use crate::channel::mail::{MailConfig, Security};

/// The aiosmtpd server of `tests/smtp_server.py`, killed when dropped.
pub struct SmtpServer {
    process: Child,
    pub port: u16,
    maildir: tempfile::TempDir,
    /// Kept so the files outlive the server that reads them, and for `ca_file`.
    certificates: Option<TestCertificates>,
}

/// A private CA and a server certificate it signed for 127.0.0.1, as PEM files.
struct TestCertificates {
    directory: tempfile::TempDir,
}

impl TestCertificates {
    fn generate() -> TestCertificates {
        let directory = tempfile::tempdir().unwrap();
        let mut ca_parameters = rcgen::CertificateParams::new(Vec::new()).unwrap();
        ca_parameters.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_parameters.distinguished_name.push(rcgen::DnType::CommonName, "千葉市 テスト CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_parameters, rcgen::KeyPair::generate().unwrap()).unwrap();
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&server_key, &ca).unwrap();
        std::fs::write(directory.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(directory.path().join("server.pem"), server.pem()).unwrap();
        std::fs::write(directory.path().join("server-key.pem"), server_key.serialize_pem()).unwrap();
        TestCertificates { directory }
    }

    fn ca_file(&self) -> PathBuf {
        self.directory.path().join("ca.pem")
    }
}

impl SmtpServer {
    /// Starts the server and waits for the line that says which port it bound.
    pub fn start(security: Security, login: Option<&str>) -> SmtpServer {
        let maildir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/smtp_server.py");
        let mut command = Command::new("python3");
        command.arg(&script).arg(maildir.path()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let certificates = (security != Security::Plain).then(TestCertificates::generate);
        if let Some(certificates) = &certificates {
            let flag = if security == Security::Tls { "tls" } else { "starttls" };
            command.args(["--security", flag, "--cert"]).arg(certificates.directory.path().join("server.pem"));
            command.arg("--key").arg(certificates.directory.path().join("server-key.pem"));
        }
        if let Some(login) = login {
            command.args(["--login", login]);
        }
        let mut process =
            command.spawn().expect("python3 could not be started (the e-mail tests need python3 with aiosmtpd)");
        let mut first_line = String::new();
        BufReader::new(process.stdout.take().unwrap()).read_line(&mut first_line).unwrap();
        let Some(port) = first_line.trim().strip_prefix("listening on 127.0.0.1:") else {
            process.wait().unwrap();
            panic!("the SMTP server of the tests did not start: {}", stderr_of(process.stderr.take().unwrap()));
        };
        let port = port.parse().unwrap();
        SmtpServer { process, port, maildir, certificates }
    }

    pub fn config(&self, security: Security) -> MailConfig {
        MailConfig {
            host: "127.0.0.1".to_string(),
            port: self.port,
            security,
            username: None,
            password: None,
            from: "千葉市 おしらせ <oshirase@city.example.jp>".to_string(),
            ca_file: self.certificates.as_ref().map(TestCertificates::ca_file),
            timeout_seconds: 10,
            fallback_after_minutes: 60,
        }
    }

    /// Every message the server accepted, as stored.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.maildir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "eml"))
            .collect();
        paths.sort();
        paths.iter().map(|path| std::fs::read(path).unwrap()).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn stderr_of(mut stderr: ChildStderr) -> String {
    let mut text = String::new();
    stderr.read_to_string(&mut text).unwrap();
    text
}
