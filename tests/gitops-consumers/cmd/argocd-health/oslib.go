package main

// Argo CD's "safe os" library (util/lua/oslib_safe.go): os.time and os.date only, nothing
// that reads files, runs programs or exits. It is wired exactly as Argo CD wires it: opened
// under the name of the table library (which, the table library being loaded already, adds
// nothing and leaves no global os), and preloaded, so `local os = require("os")` is the way
// a script reaches it. The two functions are written afresh here with Go's time package; the
// health check of this project uses neither.

import (
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

var safeOsFunctions = map[string]lua.LGFunction{
	"time": osTime,
	"date": osDate,
}

func openSafeOs(l *lua.LState) int {
	l.Push(l.RegisterModule(lua.TabLibName, safeOsFunctions))
	return 1
}

func safeOsLoader(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), safeOsFunctions))
	return 1
}

// osTime: os.time() is now in Unix seconds; os.time{year=..., month=..., day=...} that moment
// in local time (hour 12 unless given, like Lua).
func osTime(l *lua.LState) int {
	if l.GetTop() == 0 {
		l.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}
	fields := l.CheckTable(1)
	field := func(name string, fallback int) int {
		if n, ok := fields.RawGetString(name).(lua.LNumber); ok {
			return int(n)
		}
		return fallback
	}
	moment := time.Date(field("year", -1), time.Month(field("month", -1)), field("day", -1),
		field("hour", 12), field("min", 0), field("sec", 0), 0, time.Local)
	l.Push(lua.LNumber(moment.Unix()))
	return 1
}

// osDate: os.date([format [, seconds]]); a leading "!" means UTC, "*t" a table of fields,
// anything else a strftime-style format.
func osDate(l *lua.LState) int {
	moment := time.Now()
	format := "%c"
	if l.GetTop() >= 1 {
		format = l.CheckString(1)
	}
	if l.GetTop() >= 2 {
		moment = time.Unix(l.CheckInt64(2), 0)
	}
	if rest, utc := strings.CutPrefix(format, "!"); utc {
		moment = moment.UTC()
		format = rest
	}
	if strings.HasPrefix(format, "*t") {
		fields := l.NewTable()
		for name, value := range map[string]int{
			"year": moment.Year(), "month": int(moment.Month()), "day": moment.Day(),
			"hour": moment.Hour(), "min": moment.Minute(), "sec": moment.Second(),
			"wday": int(moment.Weekday()) + 1, "yday": moment.YearDay(),
		} {
			fields.RawSetString(name, lua.LNumber(value))
		}
		fields.RawSetString("isdst", lua.LFalse)
		l.Push(fields)
		return 1
	}
	l.Push(lua.LString(strftime(moment, format)))
	return 1
}

// Go layouts for the strftime conversions os.date understands.
var strftimeLayouts = map[byte]string{
	'a': "Mon", 'A': "Monday", 'b': "Jan", 'B': "January", 'c': "02 Jan 06 15:04 MST",
	'd': "02", 'F': "2006-01-02", 'H': "15", 'I': "03", 'm': "01", 'M': "04", 'p': "PM",
	'S': "05", 'x': "01/02/06", 'X': "15:04:05", 'y': "06", 'Y': "2006", 'z': "-0700", 'Z': "MST",
}

func strftime(moment time.Time, format string) string {
	var out strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			out.WriteByte(format[i])
			continue
		}
		i++
		conversion := format[i]
		switch layout, known := strftimeLayouts[conversion]; {
		case known:
			out.WriteString(moment.Format(layout))
		case conversion == 'w':
			out.WriteString(strconv.Itoa(int(moment.Weekday())))
		case conversion == '%':
			out.WriteByte('%')
		default:
			out.WriteByte('%')
			out.WriteByte(conversion)
		}
	}
	return out.String()
}
