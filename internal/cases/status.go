package cases

// Statuses of a case, in the order a case usually goes through them. StatusSubmitted is the
// hub's own; the others come from the department.
const (
	StatusSubmitted          = "submitted"
	StatusReceived           = "received"
	StatusDocumentsRequested = "documents_requested"
	StatusDocumentsComplete  = "documents_complete"
	StatusUnderReview        = "under_review"
	StatusApproved           = "approved"
	StatusRefused            = "refused"
	StatusServiceStarted     = "service_started"
	StatusClosed             = "closed"
)

// Statuses lists every status.
var Statuses = []string{StatusSubmitted, StatusReceived, StatusDocumentsRequested, StatusDocumentsComplete,
	StatusUnderReview, StatusApproved, StatusRefused, StatusServiceStarted, StatusClosed}

// DepartmentStatuses are the statuses a department may report.
var DepartmentStatuses = Statuses[1:]

// terminal statuses end a case: no deadline runs.
func terminal(status string) bool { return status == StatusRefused || status == StatusClosed }

// Channels an application comes through.
const (
	ChannelPhone     = "phone"
	ChannelWeb       = "web"
	ChannelChatbot   = "chatbot"
	ChannelMessenger = "messenger"
	ChannelTextRelay = "text_relay" // text relay for people with hearing impairments
)

// Channels lists every channel.
var Channels = []string{ChannelPhone, ChannelWeb, ChannelChatbot, ChannelMessenger, ChannelTextRelay}

// ContactMethods are how a resident may ask to be contacted.
var ContactMethods = []string{"phone", "sms", "email", "messenger", "text_relay", "post", "visit"}

// Stage is what a resident-facing channel says about a status: where the case stands and what the
// resident should do next, in plain Russian, naming neither the service nor the organization.
type Stage struct {
	Stage    string `json:"stage"`
	NextStep string `json:"next_step"`
}

var stages = map[string]Stage{
	StatusSubmitted: {"Заявление зарегистрировано и передано в учреждение социальной защиты.",
		"Ничего делать не нужно: учреждение примет заявление в работу и свяжется с вами выбранным способом."},
	StatusReceived: {"Учреждение получило заявление и приняло его в работу.",
		"Дождитесь звонка или сообщения специалиста: он скажет, нужны ли документы."},
	StatusDocumentsRequested: {"Для решения нужны документы.",
		"Представьте документы, которые назвал специалист: лично в учреждение или через портал. Если вы не знаете, какие документы нужны, позвоните в контакт-центр."},
	StatusDocumentsComplete: {"Все документы получены.",
		"Ничего делать не нужно: заявление передано на рассмотрение."},
	StatusUnderReview: {"Заявление рассматривается.",
		"Ничего делать не нужно: о решении вам сообщат выбранным способом."},
	StatusApproved: {"Принято положительное решение.",
		"Дождитесь звонка специалиста: он договорится с вами о начале предоставления услуги."},
	StatusRefused: {"В предоставлении услуги отказано.",
		"Причину отказа вам сообщат выбранным способом. Если вы не согласны с решением, его можно обжаловать; контакт-центр подскажет, как это сделать."},
	StatusServiceStarted: {"Услуга предоставляется.",
		"Ничего делать не нужно. Если что-то изменилось, сообщите специалисту учреждения."},
	StatusClosed: {"Работа по заявлению завершена.",
		"Ничего делать не нужно. Если нужна новая помощь, подайте новое заявление."},
}

// StageOf returns what a resident hears about a status.
func StageOf(status string) Stage { return stages[status] }
