import Foundation
import TesseraWebDriver

/// The steps, the page checks, the login and the actions of a browser session.
extension BrowserUpstreamSession {
    /// The absolute URL of a path below the base URL.
    func url(for pathAndQuery: String) -> String {
        let base = self.configuration.baseURL
        return (base.hasSuffix("/") ? String(base.dropLast()) : base) + pathAndQuery
    }

    /// The longest one look at the page waits for the page to change.
    static let lookInterval = 250

    /// The script a wait and a page check run. It answers the page's URL, status and source
    /// (capped), and whether the condition's selector and text are there; with `wait` > 0 and
    /// the condition not holding yet, it first waits (at most `wait` ms) for the page to change,
    /// so that a wait reacts to the page's scripts at once rather than at a polling interval.
    /// Selectors and text are arguments, never part of the script. The source is the DOM as the
    /// page's scripts left it, without its scripts, styles and templates: a script that can draw
    /// "your session has expired" does not make every page an expiry page.
    static let pageScript = """
        const [selector, text, cap, wait] = arguments;
        const holds = () => (selector ? document.querySelector(selector) !== null : true)
          && (text ? ((document.body && document.body.innerText) || '').toLowerCase().includes(text.toLowerCase()) : true);
        const state = () => {
          let html = '';
          if (document.documentElement) {
            const copy = document.documentElement.cloneNode(true);
            for (const element of copy.querySelectorAll('script, style, template, noscript')) element.remove();
            html = copy.outerHTML;
          }
          const navigation = performance.getEntriesByType('navigation')[0];
          return {
            url: location.href,
            status: navigation && navigation.responseStatus ? navigation.responseStatus : null,
            source: html.length > cap ? html.slice(0, cap) : html,
            holds: holds()
          };
        };
        if (!(wait > 0) || holds()) return state();
        return new Promise((resolve) => {
          let done = false;
          const finish = () => { if (!done) { done = true; observer.disconnect(); resolve(state()); } };
          // A change is answered 10 ms later, with the changes made meanwhile.
          const observer = new MutationObserver(() => setTimeout(finish, 10));
          observer.observe(document, {childList: true, subtree: true, characterData: true, attributes: true});
          setTimeout(finish, wait);
        });
        """

    /// The page now (or once it changed, within `wait` milliseconds), and whether `condition`
    /// holds on it.
    func look(for condition: BrowserCondition? = nil, wait: Int = 0) async throws -> (page: BrowserPage, holds: Bool) {
        let cap = self.configuration.browser.maxReadBytes
        let value: WebDriverJSON
        do {
            value = try await self.browser.execute(
                Self.pageScript,
                [
                    condition?.selector.map { .string($0) } ?? .null, condition?.text.map { .string($0) } ?? .null,
                    .number(Double(cap)), .number(Double(wait)),
                ]
            )
        } catch let error as WebDriverError where error.message.contains("is not a valid selector") {
            throw BrowserStepError("'\(condition?.selector ?? "")' is not a valid CSS selector")
        }
        let page = BrowserPage(url: value["url"]?.string ?? "", status: value["status"]?.int, source: value["source"]?.string ?? "")
        var holds = value["holds"]?.bool == true
        if let pattern = condition?.url { holds = holds && BrowserCondition.matches(page.url, pattern: pattern) }
        return (page, holds)
    }

    /// Waits until `condition` holds, for at most `timeout` seconds; with a `reader`, an ended
    /// session seen meanwhile ends the wait (``SessionEnded``). A page that navigates meanwhile
    /// (its script context gone) is looked at again.
    func wait(for condition: BrowserCondition, timeout: Double, reader: UpstreamVerdictReader?) async throws {
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(Int64(timeout * 1000)))
        while true {
            let left = deadline - ContinuousClock.now
            let milliseconds = max(0, Int(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            let looked: (page: BrowserPage, holds: Bool)?
            do {
                looked = try await self.look(for: condition, wait: min(Self.lookInterval, milliseconds))
            } catch let error where !Self.isLost(error) && !(error is BrowserStepError) {
                // The page went away under the script (a navigation): look again.
                looked = nil
                try await Task.sleep(for: .milliseconds(20))
            }
            if let (page, holds) = looked {
                if holds { return }
                if let reader {
                    let verdict = reader.verdict(onPage: page)
                    if case .expired(let evidence) = verdict { throw SessionEnded(evidence: evidence) }
                    if verdict == .blocked { throw SessionEnded(evidence: nil) }
                }
            }
            guard ContinuousClock.now < deadline else {
                throw BrowserStepError("the page did not show \(Self.describe(condition)) within \(Self.seconds(timeout))")
            }
        }
    }

    /// The page met while waiting said the session had ended (`evidence`), or was blocked (`nil`).
    struct SessionEnded: Error {
        var evidence: UpstreamVerdict.ExpiryEvidence?
    }

    /// The verdict on the page now; when `keepAlive.waitFor` is set, once it holds (logged in)
    /// or an expiry marker shows, whichever comes first (pages that check the session with a
    /// script show either only after the script ran).
    func settledVerdict(reader: UpstreamVerdictReader) async throws -> UpstreamVerdict {
        guard let wait = self.configuration.keepAlive.waitFor else {
            return reader.verdict(onPage: try await self.look().page)
        }
        do {
            try await self.wait(for: wait.condition, timeout: wait.timeout, reader: reader)
            return reader.verdict(onPage: try await self.look().page)
        } catch let ended as SessionEnded {
            return ended.evidence.map { .expired($0) } ?? .blocked
        } catch is BrowserStepError {
            // Neither logged in nor a known expiry page: not the session's page any more.
            return .expired(.loggedInMarkerMissing)
        }
    }

    /// Takes one step; a `read` step returns what it read.
    func take(_ step: BrowserStep, index: Int, values: [String: String], reader: UpstreamVerdictReader?) async throws -> BrowserReadValue? {
        switch step {
        case .goto(let path):
            try await self.browser.navigate(to: self.url(for: path))
        case .fill(let selector, let value):
            let text: String
            switch value {
            case .field(let name):
                guard let field = values[name] else { throw BrowserStepError("there is no field '\(name)' to fill in") }
                text = field
            case .source(let source):
                do {
                    text = try source.resolve(field: "steps[\(index)]", upstream: self.configuration.name, environment: self.factory.environment)
                } catch let error as UpstreamConfigurationError {
                    throw BrowserStepError(error.message)
                }
            }
            let element = try await self.element(selector)
            try await element.clear()
            try await element.sendKeys(text)
        case .click(let selector):
            try await self.element(selector).click()
        case .press(let selector, let key):
            try await self.element(selector).sendKeys(BrowserKeys.code(for: key) ?? key)
        case .submit(let selector):
            let submitted = try await self.browser.execute(
                """
                const element = document.querySelector(arguments[0]);
                const form = element && (element.tagName === 'FORM' ? element : element.form);
                if (!form) return false;
                if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
                return true;
                """,
                [.string(selector)]
            )
            guard submitted.bool == true else { throw BrowserStepError("no form matches '\(selector)'") }
        case .waitFor(let condition, let timeout):
            try await self.wait(for: condition, timeout: timeout, reader: reader)
        case .read(let what, let label):
            return try await self.read(what, index: index, label: label)
        }
        return nil
    }

    /// The first element matching `selector` (WebDriver's implicit wait lets it appear).
    func element(_ selector: String) async throws -> WebDriverElement {
        do {
            return try await self.browser.findElement(selector)
        } catch let error as WebDriverError where error.error == "no such element" {
            throw BrowserStepError("no element matches '\(selector)'")
        } catch let error as WebDriverError where error.error == "invalid selector" {
            throw BrowserStepError("'\(selector)' is not a valid CSS selector")
        }
    }

    func read(_ what: BrowserRead, index: Int, label: String?) async throws -> BrowserReadValue {
        let value: String?
        switch what {
        case .page:
            value = try await self.browser.execute("return document.body ? document.body.innerText : ''").string ?? ""
        case .source:
            value = try await self.browser.pageSource()
        case .url:
            value = try await self.browser.currentURL()
        case .text(let selector):
            value = try await self.element(selector).text()
        case .attribute(let selector, let name):
            value = try await self.element(selector).attribute(name)
        }
        let cap = self.configuration.browser.maxReadBytes
        guard let value, value.utf8.count > cap else { return BrowserReadValue(step: index, label: label, value: value, truncated: false) }
        var cut = String(decoding: value.utf8.prefix(cap), as: UTF8.self)
        // A character cut in two decodes as U+FFFD; drop it.
        if cut.last == "\u{FFFD}" { cut.removeLast() }
        return BrowserReadValue(step: index, label: label, value: cut, truncated: true)
    }

    // MARK: Login

    /// Takes the recipe's steps, then waits (at most 10 s) for the success condition.
    func logIn(values: [String: String]) async throws {
        let recipe = self.configuration.login
        for (index, step) in recipe.steps.enumerated() {
            do {
                _ = try await self.take(step, index: index, values: values, reader: nil)
            } catch let error as BrowserStepError {
                throw UpstreamLoginError(.refused, reason: "login step \(index + 1) (\(step.name)): \(error)")
            } catch let error where !Self.isLost(error) {
                throw UpstreamLoginError(.refused, reason: "login step \(index + 1) (\(step.name)): \(BrowserUpstreamSessionFactory.describe(error))")
            }
        }
        let success = recipe.success.condition
        do {
            try await self.wait(for: success, timeout: min(10, self.configuration.browser.loginTimeout), reader: nil)
        } catch is BrowserStepError {
            let page = try await self.look().page
            if self.factory.reader.verdict(onPage: page) == .blocked {
                throw UpstreamLoginError(.refused, reason: "the page after the login is a blocked page")
            }
            throw UpstreamLoginError(.refused, reason: "the page after the login did not show \(Self.describe(success))")
        }
        let page = try await self.look().page
        switch self.factory.reader.verdict(onPage: page) {
        case .expired(.phrase), .blocked:
            throw UpstreamLoginError(.refused, reason: "the page after the login is a 'not logged in' or blocked page")
        case .ok, .expired, .rateLimited, .transient:
            break
        }
        try await self.pullCookies()
        if let cookie = recipe.success.cookie, !self.http.cookies().contains(where: { $0.name == cookie }) {
            throw UpstreamLoginError(.refused, reason: "the login did not set the cookie \(cookie)")
        }
        self.checkMemory(enforce: false)
    }

    // MARK: Actions

    func perform(_ steps: [BrowserStep], reader: UpstreamVerdictReader) async -> BrowserActionOutcome {
        var reads: [BrowserReadValue] = []
        var checked = false
        for (index, step) in steps.enumerated() {
            do {
                try self.checkNotEnded()
                if index == 0 { try await self.pushCookies() }
                if let value = try await self.take(step, index: index, values: [:], reader: reader) { reads.append(value) }
                checked = false
                // A wait that follows checks the page for an ended session itself.
                let waitFollows: Bool
                if index + 1 < steps.count, case .waitFor = steps[index + 1] { waitFollows = true } else { waitFollows = false }
                if step.mayNavigate && !waitFollows {
                    if let outcome = try await self.endedOutcome(reader: reader, step: index) { return outcome }
                    checked = true
                }
            } catch let ended as SessionEnded {
                return ended.evidence.map { .ended($0, step: index) } ?? .blocked
            } catch {
                if Self.isLost(error) {
                    self.lose()
                    return .ended(.browserEnded, step: index)
                }
                // A step that failed on the page of an ended session failed because of it.
                if let outcome = try? await self.endedOutcome(reader: reader, step: index) { return outcome }
                let reason = (error as? BrowserStepError)?.description ?? BrowserUpstreamSessionFactory.describe(error)
                return .failed(step: index, reason: reason)
            }
        }
        do {
            let page = try await self.look().page
            if !checked, let outcome = Self.endedOutcome(reader.verdict(onPage: page), step: steps.count - 1) { return outcome }
            let url = page.url
            try await self.closeOtherWindows()
            try await self.pullCookies()
            return .completed(BrowserActionResult(reads: reads, url: url))
        } catch {
            if Self.isLost(error) {
                self.lose()
                return .ended(.browserEnded, step: steps.count - 1)
            }
            return .failed(step: steps.count - 1, reason: BrowserUpstreamSessionFactory.describe(error))
        }
    }

    /// `.ended` or `.blocked` when the page now says so; `nil` when it looks logged in.
    func endedOutcome(reader: UpstreamVerdictReader, step: Int) async throws -> BrowserActionOutcome? {
        Self.endedOutcome(reader.verdict(onPage: try await self.look().page), step: step)
    }

    static func endedOutcome(_ verdict: UpstreamVerdict, step: Int) -> BrowserActionOutcome? {
        switch verdict {
        case .expired(let evidence): return .ended(evidence, step: step)
        case .blocked: return .blocked
        case .ok, .rateLimited, .transient: return nil
        }
    }

    /// Closes the windows a page opened, so that a pooled browser keeps one.
    func closeOtherWindows() async throws {
        let handles = try await self.browser.windowHandles()
        guard handles.count > 1 else { return }
        let current = try await self.browser.windowHandle()
        for handle in handles where handle != current {
            try await self.browser.switchToWindow(handle)
            try await self.browser.closeWindow()
        }
        try await self.browser.switchToWindow(current)
    }

    static func describe(_ condition: BrowserCondition) -> String {
        var parts: [String] = []
        if let selector = condition.selector { parts.append("an element matching '\(selector)'") }
        if let url = condition.url { parts.append("a URL matching '\(url)'") }
        if let text = condition.text { parts.append("the text '\(text)'") }
        return parts.joined(separator: " and ")
    }

    static func seconds(_ value: Double) -> String {
        value.rounded() == value ? "\(Int(value)) s" : "\(value) s"
    }
}
