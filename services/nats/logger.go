package nats

import (
	"fmt"
	"strings"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// serverLogger adapts nats-server's logger to go-kit: notices are info,
// traces are debug, and a "fatal" is an error line that is also kept, so
// that Run can return it. nats-server's own logger would exit the process
// on Fatalf; this one never does.
type serverLogger struct {
	logger log.Logger

	mu    sync.Mutex
	fatal error
}

func newServerLogger(logger log.Logger) *serverLogger {
	return &serverLogger{logger: log.With(logger, "component", "nats-server")}
}

// Noticef logs at info, except the indented detail lines and rulers of
// the start banner (version, store limits…), which are debug: a start
// then says what listens where in a few lines.
func (l *serverLogger) Noticef(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(msg, "  ") || strings.HasPrefix(msg, "---") || strings.TrimSpace(msg) == "" {
		level.Debug(l.logger).Log("msg", msg)
		return
	}
	level.Info(l.logger).Log("msg", msg)
}

// plaintextWarning is the warning nats-server gives at every start when its
// users' passwords are not bcrypt hashes.
const plaintextWarning = "Plaintext passwords detected, use nkeys or bcrypt"

// Warnf logs at warn, except plaintextWarning, which is debug: the
// passwords are the ones `ocis init` generated into the 0600 ocis.env,
// where every client process reads them in plain anyway, so a hash in the
// server's options would protect nothing and cost a bcrypt comparison per
// connection; warning about it at each start would only teach operators to
// ignore warnings.
func (l *serverLogger) Warnf(format string, v ...any) {
	if format == plaintextWarning {
		level.Debug(l.logger).Log("msg", format)
		return
	}
	level.Warn(l.logger).Log("msg", fmt.Sprintf(format, v...))
}

func (l *serverLogger) Errorf(format string, v ...any) {
	level.Error(l.logger).Log("msg", fmt.Sprintf(format, v...))
}

func (l *serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	level.Error(l.logger).Log("msg", msg, "fatal", true)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fatal == nil {
		l.fatal = fmt.Errorf("nats server: %s", msg)
	}
}

func (l *serverLogger) Debugf(format string, v ...any) {
	level.Debug(l.logger).Log("msg", fmt.Sprintf(format, v...))
}

func (l *serverLogger) Tracef(format string, v ...any) {
	level.Debug(l.logger).Log("msg", fmt.Sprintf(format, v...), "trace", true)
}

// err returns the first fatal error the server reported, if any.
func (l *serverLogger) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}
