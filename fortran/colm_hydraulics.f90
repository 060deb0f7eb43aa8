! Soil hydraulic functions: water retention psi(theta), its inverse theta(psi), and hydraulic conductivity, with
! derivatives, for one soil layer described by its parameter vector sp(NSP) (indices SP_* in colm_layout).
!
! hydr_model = 1: Campbell (1974) / Clapp and Hornberger (1978), the CoLM2014 form
!   s = theta / theta_s,  psi = psi_s s^(-b)  (psi_s = SP_PSI_S < 0),  K = Ksat s^(2b+3)
! hydr_model = 2: van Genuchten (1980) retention with Mualem (1976) conductivity in the air-entry form of
!   Ippisch, Vogel and Bastian (2006, AWR 29, 1780-1789) used by CoLM202X (MOD_Hydro_SoilFunction), with CoLM202X's
!   air-entry value psi_e = -1 mm:
!   S*(psi) = [1 + (alpha |psi|)^n]^(-m),  m = 1 - 1/n,   Sc = S*(psi_e),
!   Se = (theta - theta_r) / (theta_s - theta_r) = S*(psi) / Sc  for psi < psi_e,  1 above,
!   K = Ksat Se^L [ (1 - (1 - (Se Sc)^(1/m))^m) / (1 - (1 - Sc^(1/m))^m) ]^2.
!   As psi_e -> 0 this is the classic van Genuchten-Mualem model; with psi_e = -1 mm retention differs from it by
!   less than 0.1 % of theta_s - theta_r for alpha <= 0.02 mm-1, while dK/dpsi stays bounded at saturation
!   (it is unbounded for n < 2 in the classic model, Vogel et al. 2001, AWR 24, 133-144). psi_e is SP_PSI_E
!   (< 0, mm); a value >= 0 there means CoLM202X's -1 mm.
! hydr_model = 3: classic van Genuchten-Mualem (psi_e = 0: Sc = 1, fc = 1; K = Ksat Se^L [1 - (1 - Se^(1/m))^m]^2).
! hydr_model = 4: Gardner (1958) exponential conductivity with the exponential retention of Srivastava and Yeh
!   (1991, WRR 27, 753-762): for psi < 0, Se = exp(alpha psi), theta = theta_r + (theta_s - theta_r) Se,
!   K = Ksat exp(alpha psi) (alpha = SP_ALPHA_VG, mm-1); saturated at psi >= 0. Used by colmda.verification.
!
! Frozen soil (CoLM2014 convention): matric potential and relative conductivity follow from the liquid content
! alone ("freezing is like drying"; liquid beyond the pore space left by ice is ignored), and the conductivity is
! multiplied by the ice impedance 10^(-6 f_ice), f_ice = theta_ice / theta_s.
! Matric potentials are in mm of water (<= 0) and are bounded below by smpmin.
module colm_hydraulics
  use colm_const, only: r8, ik, smpmin
  use colm_layout, only: NSP, SP_THETA_S, SP_THETA_R, SP_KSAT, SP_PSI_S, SP_BSW, SP_ALPHA_VG, SP_N_VG, SP_L_VG, &
                         SP_PSI_E
  implicit none
  private
  public :: HYDR_CAMPBELL, HYDR_VG, HYDR_VG_CLASSIC, HYDR_GARDNER, PSI_E_VG, has_retention
  public :: soil_matric_potential, soil_conductivity, soil_theta_from_psi, soil_state_psi
  public :: ice_impedance, soil_psi_saturation
  public :: hyd_layer_t, hyd_layer, layer_state_psi, layer_matric_potential, layer_state_theta

  integer(ik), parameter :: HYDR_CAMPBELL = 1    ! Campbell / Clapp-Hornberger switch value (-)
  integer(ik), parameter :: HYDR_VG = 2          ! van Genuchten-Mualem, air-entry form, switch value (-)
  integer(ik), parameter :: HYDR_VG_CLASSIC = 3  ! classic van Genuchten-Mualem (psi_e = 0) switch value (-)
  integer(ik), parameter :: HYDR_GARDNER = 4     ! Gardner exponential model switch value (-)
  real(r8), parameter :: PSI_E_VG = -1.0_r8      ! air-entry potential of the vG-Mualem form, CoLM202X (mm)
  real(r8), parameter :: e_ice = 6.0_r8          ! ice impedance exponent, CoLM2014 / CLM4 (-)
  real(r8), parameter :: ln10 = log(10.0_r8)     ! (-)
  real(r8), parameter :: h_reg_classic = -1.0e-3_r8 ! classic vG: K linear in h between here and 0 (mm)

  ! constants of one layer's hydraulic functions at a given ice content (see hyd_layer)
  type :: hyd_layer_t
    integer(ik) :: model                         ! 1 Campbell, 2 vG air-entry form, 3 classic vG (stored as 2),
                                                 ! 4 Gardner (-)
    real(r8) :: ths, thr, ksat                   ! porosity, residual content (m3 m-3), Ksat (mm s-1)
    real(r8) :: alpha, n, m, l                   ! vG alpha (mm-1), n, m = 1 - 1/n, Mualem L (-)
    real(r8) :: sc, fc                           ! vG S*(psi_e) and Mualem factor at psi_e (-)
    real(r8) :: rsc, dth_sc, mna, kfc            ! 1/sc (-), (theta_s - theta_r)/sc (-), m n alpha (mm-1),
                                                 ! imped Ksat / fc^2 (mm s-1): divisions taken out of vg_state
    real(r8) :: b, psis                          ! Campbell exponent (-), air-entry potential (mm)
    real(r8) :: cap, hcap                        ! pore space left by ice (m3 m-3), vG potential at the cap (mm)
    real(r8) :: imped                            ! ice impedance factor (-)
    logical :: empty                             ! vG: the cap is at or below theta_r (no liquid can move) (-)
    real(r8) :: hreg, kreg, sreg                 ! classic vG: K is linear in h above hreg (mm): K(hreg) (mm s-1),
                                                 ! slope (Ksat imped - kreg) / |hreg| (s-1); hreg = psis otherwise
  end type hyd_layer_t

contains

  ! The switch values with a retention curve (0 is "pure water" for the phase change).
  pure logical function has_retention(hydr_model)
    integer(ik), intent(in) :: hydr_model        ! HYDR_* (-)
    has_retention = hydr_model >= HYDR_CAMPBELL .and. hydr_model <= HYDR_GARDNER
  end function has_retention

  ! The air-entry potential of the vG forms: SP_PSI_E if negative, else CoLM202X's -1 mm; 0 for classic vG.
  pure real(r8) function vg_psi_e(hydr_model, sp) result(psie)
    integer(ik), intent(in) :: hydr_model        ! HYDR_VG or HYDR_VG_CLASSIC (-)
    real(r8), intent(in) :: sp(NSP)              ! soil parameters of the layer, SP_* (mixed)
    if (hydr_model == HYDR_VG_CLASSIC) then
      psie = 0.0_r8
    else if (sp(SP_PSI_E) < 0.0_r8) then
      psie = sp(SP_PSI_E)
    else
      psie = PSI_E_VG
    end if
  end function vg_psi_e

  ! exp(y) - 1 without cancellation for small |y| (needed for 1 - S^(1/m) near saturation).
  pure real(r8) function expm1_r8(y) result(e)
    real(r8), intent(in) :: y                    ! argument (-)
    if (abs(y) < 1.0e-5_r8) then
      e = y * (1.0_r8 + y * (0.5_r8 + y / 6.0_r8))
    else
      e = exp(y) - 1.0_r8
    end if
  end function expm1_r8

  ! log(1 + y) without cancellation for small |y|.
  pure real(r8) function log1p_r8(y) result(e)
    real(r8), intent(in) :: y                    ! argument, > -1 (-)
    if (abs(y) < 1.0e-4_r8) then
      e = y * (1.0_r8 - y * (0.5_r8 - y * (1.0_r8 / 3.0_r8 - 0.25_r8 * y)))
    else
      e = log(1.0_r8 + y)
    end if
  end function log1p_r8

  ! 1 - (1 - S*^(1/m))^m of the Mualem conductivity, written as 1 - x^(n-1) S* near saturation (x <= 1) and as
  ! -expm1(-m log1p(x^-n)) in dry soil, where 1 - x^(n-1) S* would lose all its digits (x = alpha |psi|).
  pure real(r8) function mualem_f(x, n) result(f)
    real(r8), intent(in) :: x                    ! alpha |psi| (-)
    real(r8), intent(in) :: n                    ! van Genuchten n (-)
    if (x <= 1.0_r8) then
      f = 1.0_r8 - x**(n - 1.0_r8) * (1.0_r8 + x**n)**(-(1.0_r8 - 1.0_r8 / n))
    else
      f = -expm1_r8(-(1.0_r8 - 1.0_r8 / n) * log1p_r8(x**(-n)))
    end if
  end function mualem_f

  ! Ice impedance factor on conductivity, 10^(-6 theta_ice/theta_s) (CoLM2014 / CLM4).
  pure real(r8) function ice_impedance(vol_ice, theta_s) result(imped)
    real(r8), intent(in) :: vol_ice              ! volumetric ice content (m3 m-3)
    real(r8), intent(in) :: theta_s              ! porosity (m3 m-3)
    imped = exp(-e_ice * ln10 * min(1.0_r8, max(0.0_r8, vol_ice) / theta_s))   ! (exp is cheaper than pow)
  end function ice_impedance

  ! Matric potential at which the unfrozen soil becomes saturated (air entry): psi_s (Campbell) or psi_e (vG).
  pure real(r8) function soil_psi_saturation(hydr_model, sp) result(psat)
    integer(ik), intent(in) :: hydr_model        ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: sp(NSP)              ! soil parameters of the layer, SP_* (mixed)
    if (hydr_model == HYDR_VG .or. hydr_model == HYDR_VG_CLASSIC) then
      psat = vg_psi_e(hydr_model, sp)
    else if (hydr_model == HYDR_GARDNER) then
      psat = 0.0_r8
    else
      psat = sp(SP_PSI_S)
    end if
  end function soil_psi_saturation

  ! Per-layer constants of the hydraulic functions (parameters and the ice state of the layer), computed once by
  ! hyd_layer and reused by every evaluation in a solve: vG m, Sc and the Mualem normaliser fc, the relative
  ! saturation at smpmin, the ice cap, its potential and the ice impedance. The public routines below build it for
  ! one call; colm_soilwater builds it once per layer and step and calls the layer_* routines directly.
  pure function hyd_layer(hydr_model, sp, vol_ice) result(hl)
    integer(ik), intent(in) :: hydr_model        ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: sp(NSP)              ! soil parameters of the layer, SP_* (mixed)
    real(r8), intent(in) :: vol_ice              ! volumetric ice content (m3 m-3)
    type(hyd_layer_t) :: hl                      ! layer constants (mixed)
    real(r8) :: dummy                            ! unused derivative (mm)
    real(r8) :: x, xn                            ! alpha |psi_e|, x^n (-)
    hl%model = hydr_model
    if (hydr_model == HYDR_VG_CLASSIC) hl%model = HYDR_VG    ! the same functions with psi_e = 0
    hl%ths = sp(SP_THETA_S)
    hl%ksat = sp(SP_KSAT)
    hl%cap = max(hl%ths - max(vol_ice, 0.0_r8), 0.0_r8)
    if (vol_ice > 0.0_r8) then
      hl%imped = ice_impedance(vol_ice, hl%ths)
    else
      hl%imped = 1.0_r8                          ! 10**(-0) exactly
    end if
    hl%hcap = 0.0_r8
    hl%empty = .false.
    if (hydr_model == HYDR_VG .or. hydr_model == HYDR_VG_CLASSIC) then
      hl%thr = sp(SP_THETA_R)
      hl%alpha = sp(SP_ALPHA_VG)
      hl%n = sp(SP_N_VG)
      hl%l = sp(SP_L_VG)
      hl%m = 1.0_r8 - 1.0_r8 / hl%n
      hl%psis = vg_psi_e(hydr_model, sp)
      ! S* and the Mualem factor at psi_e with the formulas of layer_state_psi (x = alpha |psi_e| <= 1 for
      ! soils), so that Se = 1 and f / fc = 1 there exactly; the classic form has Sc = fc = 1
      x = -hl%alpha * hl%psis
      if (x > 0.0_r8) then
        xn = exp(hl%n * log(x))
        hl%sc = exp(-hl%m * log1p_r8(xn))
        if (x <= 1.0_r8) then
          hl%fc = 1.0_r8 - (xn / x) * hl%sc
        else
          hl%fc = mualem_f(x, hl%n)
        end if
      else
        hl%sc = 1.0_r8
        hl%fc = 1.0_r8
      end if
      hl%rsc = 1.0_r8 / hl%sc
      hl%dth_sc = (hl%ths - hl%thr) / hl%sc
      hl%mna = hl%m * hl%n * hl%alpha
      hl%kfc = hl%imped * hl%ksat / (hl%fc * hl%fc)
      hl%b = 0.0_r8
      hl%hreg = hl%psis
      hl%kreg = 0.0_r8
      hl%sreg = 0.0_r8
      if (hl%psis >= 0.0_r8 .and. hl%n < 2.0_r8) then
        ! classic vG with n < 2: dK/dh ~ |h|^(n-2) is unbounded at saturation, and K falls by a large factor
        ! within a micrometre of head (n = 1.09: to 0.5 Ksat at 1e-3 mm), where Newton steps across the kink
        ! at h = 0 do not converge. K is taken linear in h over -1e-3 mm < h < 0 (retention unchanged);
        ! see docs/physics-soilwater.md for the effect on solutions.
        hl%hreg = h_reg_classic
        x = -hl%alpha * hl%hreg
        xn = exp(hl%n * log(x))
        hl%kreg = hl%kfc * exp(hl%l * (-hl%m * log1p_r8(xn))) * mualem_f(x, hl%n)**2
        hl%sreg = (hl%imped * hl%ksat - hl%kreg) / (-hl%hreg)
      end if
      if (hl%cap < hl%ths) then
        if (hl%cap <= hl%thr) then
          hl%empty = .true.
        else
          ! the ice cap: the potential at which the liquid fills the pore space left by ice
          call vg_psi_of_theta(hl, hl%cap, hl%hcap, dummy)
        end if
      end if
    else if (hydr_model == HYDR_GARDNER) then
      hl%thr = sp(SP_THETA_R)
      hl%alpha = sp(SP_ALPHA_VG)
      hl%n = 1.0_r8
      hl%l = 0.0_r8
      hl%m = 0.0_r8
      hl%sc = 1.0_r8
      hl%fc = 1.0_r8
      hl%rsc = 1.0_r8
      hl%dth_sc = hl%ths - hl%thr
      hl%mna = 0.0_r8
      hl%kfc = hl%imped * hl%ksat
      hl%b = 0.0_r8
      hl%psis = 0.0_r8
      if (hl%cap < hl%ths) then
        if (hl%cap <= hl%thr) then
          hl%empty = .true.
        else
          hl%hcap = log((hl%cap - hl%thr) / (hl%ths - hl%thr)) / hl%alpha
        end if
      end if
    else
      hl%thr = 0.0_r8
      hl%alpha = 0.0_r8
      hl%n = 1.0_r8
      hl%l = 0.0_r8
      hl%m = 0.0_r8
      hl%sc = 1.0_r8
      hl%fc = 1.0_r8
      hl%rsc = 1.0_r8
      hl%dth_sc = 0.0_r8
      hl%mna = 0.0_r8
      hl%kfc = 0.0_r8
      hl%b = sp(SP_BSW)
      hl%psis = sp(SP_PSI_S)
    end if
  end function hyd_layer

  ! The vG inverse of an unsaturated content: S* = Se Sc, x^n = S*^(-1/m) - 1 and x = alpha |h|; ok = .false.
  ! where psi would be at or below smpmin (tested on psi itself, after a guard against overflow).
  pure subroutine vg_inverse(hl, s, ss, xn, x, ok)
    type(hyd_layer_t), intent(in) :: hl          ! layer constants (mixed)
    real(r8), intent(in) :: s                    ! Se, 0 < Se < 1 (-)
    real(r8), intent(out) :: ss, xn, x           ! S*, x^n, x (-)
    logical, intent(out) :: ok                   ! psi = -x / alpha lies above smpmin (-)
    real(r8) :: y                                ! -log(S*)/m (-)
    real(r8), parameter :: ymax = 700.0_r8       ! -log(S*)/m beyond which psi is far below smpmin (-)
    ss = s * hl%sc
    y = -log(ss) / hl%m
    ok = .false.
    xn = 0.0_r8
    x = 0.0_r8
    if (y > ymax) return
    xn = expm1_r8(y)
    x = exp(log(xn) / hl%n)
    ok = -x / hl%alpha > smpmin
  end subroutine vg_inverse

  ! vG matric potential of an (ice-free) content theta and d psi / d theta, from the layer constants.
  pure subroutine vg_psi_of_theta(hl, theta, smp, dsmp_dtheta)
    type(hyd_layer_t), intent(in) :: hl          ! layer constants (mixed)
    real(r8), intent(in) :: theta                ! liquid content (m3 m-3)
    real(r8), intent(out) :: smp                 ! matric potential (mm, <= 0)
    real(r8), intent(out) :: dsmp_dtheta         ! d smp / d theta (mm per m3 m-3)
    real(r8) :: s, ss, x, xr                     ! Se, S* = Se Sc, S*^(-1/m) - 1, x^(1/n) (-)
    logical :: ok                                ! psi above smpmin (-)
    s = (theta - hl%thr) / (hl%ths - hl%thr)
    if (s >= 1.0_r8) then
      smp = hl%psis
      dsmp_dtheta = 0.0_r8
      return
    end if
    ! psi is clipped at smpmin (zero derivative)
    smp = smpmin
    dsmp_dtheta = 0.0_r8
    if (s <= 0.0_r8) return
    call vg_inverse(hl, s, ss, x, xr, ok)
    if (.not. ok) return
    smp = -xr / hl%alpha
    ! x^(1/n - 1) S*^(-1/m - 1) = (xr / x) (1 + x) / S*, since S*^(-1/m) = 1 + x
    dsmp_dtheta = hl%sc * (xr / x) * ((1.0_r8 + x) / ss) / (hl%alpha * hl%n * hl%m * (hl%ths - hl%thr))
  end subroutine vg_psi_of_theta

  ! Matric potential of the liquid water and its derivative with respect to the liquid content.
  ! Liquid is limited to the pore space left by ice; smp >= smpmin; dsmp_dtheta = 0 where smp is clipped
  ! (at smpmin, or at saturation where smp is the air-entry value).
  pure subroutine soil_matric_potential(hydr_model, sp, vol_liq, vol_ice, smp, dsmp_dtheta)
    integer(ik), intent(in) :: hydr_model        ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: sp(NSP)              ! soil parameters of the layer, SP_* (mixed)
    real(r8), intent(in) :: vol_liq              ! volumetric liquid water content (m3 m-3)
    real(r8), intent(in) :: vol_ice              ! volumetric ice content (m3 m-3)
    real(r8), intent(out) :: smp                 ! matric potential (mm, <= 0)
    real(r8), intent(out) :: dsmp_dtheta         ! d smp / d vol_liq (mm per m3 m-3)
    call layer_matric_potential(hyd_layer(hydr_model, sp, vol_ice), vol_liq, smp, dsmp_dtheta)
  end subroutine soil_matric_potential

  ! soil_matric_potential from the layer constants (the ice content is the one hl was built with).
  pure subroutine layer_matric_potential(hl, vol_liq, smp, dsmp_dtheta)
    type(hyd_layer_t), intent(in) :: hl          ! layer constants (mixed)
    real(r8), intent(in) :: vol_liq              ! volumetric liquid water content (m3 m-3)
    real(r8), intent(out) :: smp                 ! matric potential (mm, <= 0)
    real(r8), intent(out) :: dsmp_dtheta         ! d smp / d vol_liq (mm per m3 m-3)
    real(r8) :: theta, s                         ! usable liquid content (m3 m-3), theta / theta_s (-)

    theta = min(vol_liq, hl%cap)
    if (hl%model == HYDR_VG) then
      call vg_psi_of_theta(hl, theta, smp, dsmp_dtheta)
    else if (hl%model == HYDR_GARDNER) then
      s = (theta - hl%thr) / (hl%ths - hl%thr)
      smp = smpmin
      dsmp_dtheta = 0.0_r8
      if (s >= 1.0_r8) then
        smp = 0.0_r8
      else if (s > 0.0_r8) then
        if (log(s) / hl%alpha > smpmin) then
          smp = log(s) / hl%alpha
          dsmp_dtheta = 1.0_r8 / (hl%alpha * (theta - hl%thr))
        end if
      end if
    else
      s = theta / hl%ths
      if (s >= 1.0_r8) then
        smp = hl%psis
        dsmp_dtheta = 0.0_r8
      else if (s <= 0.0_r8) then
        smp = smpmin
        dsmp_dtheta = 0.0_r8
      else if (-hl%b * log(s) >= log(smpmin / hl%psis)) then
        ! at or below smpmin (tested in logs: s^(-b) overflows for very small s)
        smp = smpmin
        dsmp_dtheta = 0.0_r8
      else
        smp = hl%psis * s**(-hl%b)
        dsmp_dtheta = -hl%b * smp / theta
      end if
    end if
  end subroutine layer_matric_potential

  ! Liquid water content in equilibrium with matric potential smp (inverse of soil_matric_potential) and the
  ! specific moisture capacity d theta / d smp. The content is capped at the pore space left by ice, where the
  ! capacity is 0 (the layer is "full"); smp below smpmin is treated as smpmin.
  pure subroutine soil_theta_from_psi(hydr_model, sp, smp, vol_ice, vol_liq, dtheta_dpsi)
    integer(ik), intent(in) :: hydr_model        ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: sp(NSP)              ! soil parameters of the layer, SP_* (mixed)
    real(r8), intent(in) :: smp                  ! matric potential (mm)
    real(r8), intent(in) :: vol_ice              ! volumetric ice content (m3 m-3)
    real(r8), intent(out) :: vol_liq             ! volumetric liquid water content (m3 m-3)
    real(r8), intent(out) :: dtheta_dpsi         ! d vol_liq / d smp (m3 m-3 mm-1)
    real(r8) :: hk, dhk                          ! conductivity (mm s-1) and dK/dpsi (s-1), not used here
    call layer_state_psi(hyd_layer(hydr_model, sp, vol_ice), smp, vol_liq, dtheta_dpsi, hk, dhk)
  end subroutine soil_theta_from_psi

  ! Liquid content, capacity, conductivity and dK/dpsi at matric potential smp, from closed forms in smp (no
  ! round trip through theta, so K is accurate close to saturation). Capped at the pore space left by ice: above
  ! the cap the layer is full, with zero capacity and the conductivity of the cap.
  pure subroutine soil_state_psi(hydr_model, sp, smp, vol_ice, vol_liq, dtheta_dpsi, hk, dhk_dpsi)
    integer(ik), intent(in) :: hydr_model        ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: sp(NSP)              ! soil parameters of the layer, SP_* (mixed)
    real(r8), intent(in) :: smp                  ! matric potential (mm)
    real(r8), intent(in) :: vol_ice              ! volumetric ice content (m3 m-3)
    real(r8), intent(out) :: vol_liq             ! liquid content (m3 m-3)
    real(r8), intent(out) :: dtheta_dpsi         ! d vol_liq / d smp (m3 m-3 mm-1)
    real(r8), intent(out) :: hk                  ! hydraulic conductivity (mm s-1)
    real(r8), intent(out) :: dhk_dpsi            ! d hk / d smp (s-1)
    call layer_state_psi(hyd_layer(hydr_model, sp, vol_ice), smp, vol_liq, dtheta_dpsi, hk, dhk_dpsi)
  end subroutine soil_state_psi

  ! soil_state_psi from the layer constants: one log and one exp for x^n (x^-n in dry soil, x > 1), one log1p and
  ! one exp / expm1 for S* = (1 + x^n)^(-m) and the Mualem factor, a sqrt for Se^L when L = 1/2.
  pure subroutine layer_state_psi(hl, smp, vol_liq, dtheta_dpsi, hk, dhk_dpsi)
    type(hyd_layer_t), intent(in) :: hl          ! layer constants (mixed)
    real(r8), intent(in) :: smp                  ! matric potential (mm)
    real(r8), intent(out) :: vol_liq             ! liquid content (m3 m-3)
    real(r8), intent(out) :: dtheta_dpsi         ! d vol_liq / d smp (m3 m-3 mm-1)
    real(r8), intent(out) :: hk                  ! hydraulic conductivity (mm s-1)
    real(r8), intent(out) :: dhk_dpsi            ! d hk / d smp (s-1)
    real(r8) :: h, s, ls                         ! potential (mm), theta / theta_s (-), log s (-)
    real(r8) :: x, lx, xn, u, sstar, f           ! alpha|h|, log x, x^n, x^-n, S*, Mualem f (-)
    real(r8) :: w, xr                            ! 1 - f = x^(n-1) S*, x^(n-1) / (1 + x^n) (-)

    h = max(smp, smpmin)
    if (hl%model /= HYDR_CAMPBELL) then
      ! vG and Gardner: a layer with no room for liquid, and the head held at the ice cap
      if (hl%empty) then
        vol_liq = hl%cap
        dtheta_dpsi = 0.0_r8
        hk = 0.0_r8
        dhk_dpsi = 0.0_r8
        return
      end if
      if (hl%cap < hl%ths) h = min(h, hl%hcap)
    end if
    if (hl%model == HYDR_VG) then
      if (h >= hl%psis) then
        vol_liq = min(hl%ths, hl%cap)
        dtheta_dpsi = 0.0_r8
        hk = hl%imped * hl%ksat
        dhk_dpsi = 0.0_r8
        return
      end if
      x = -hl%alpha * h
      lx = log(x)
      if (x <= 1.0_r8) then
        xn = exp(hl%n * lx)
        sstar = exp(-hl%m * log1p_r8(xn))
        w = (xn / x) * sstar
        f = 1.0_r8 - w
        ! x^(n-1) / (1 + x^n) of the derivatives below
        xr = (xn / x) / (1.0_r8 + xn)
      else
        ! dry: from u = x^-n, with w = (x^n / (1 + x^n))^m = x^(n-1) S* = 1 - f and S* = w u x, so that the
        ! Mualem factor keeps its digits and no further exp/log is needed (u, log1p and expm1 are polynomials
        ! in very dry soil)
        u = exp(-hl%n * lx)
        f = -expm1_r8(-hl%m * log1p_r8(u))
        w = 1.0_r8 - f
        sstar = w * u * x
        xr = 1.0_r8 / (x * (1.0_r8 + u))
      end if
      call vg_state_from_sstar(hl, x, sstar, f, xr, h < max(smp, smpmin), vol_liq, dtheta_dpsi, hk, dhk_dpsi)
      if (h > hl%hreg) then
        hk = hl%kreg + hl%sreg * (h - hl%hreg)
        if (dhk_dpsi /= 0.0_r8) dhk_dpsi = hl%sreg       ! (0 where h is held at the ice cap)
      end if
    else if (hl%model == HYDR_GARDNER) then
      ! Se = exp(alpha h) = K / Ksat (head held at the ice cap above)
      s = exp(hl%alpha * min(h, 0.0_r8))
      vol_liq = min(hl%thr + hl%dth_sc * s, hl%cap)
      hk = hl%kfc * s
      if (h >= 0.0_r8 .or. h < max(smp, smpmin)) then
        dtheta_dpsi = 0.0_r8
        dhk_dpsi = 0.0_r8
      else
        dtheta_dpsi = hl%alpha * hl%dth_sc * s
        dhk_dpsi = hl%alpha * hk
      end if
    else
      if (h >= hl%psis) then
        s = 1.0_r8
        ls = 0.0_r8
        dtheta_dpsi = 0.0_r8
      else
        ls = -log(h / hl%psis) / hl%b
        s = exp(ls)
        dtheta_dpsi = -hl%ths * s / (hl%b * h)
      end if
      vol_liq = hl%ths * s
      if (vol_liq >= hl%cap) then
        vol_liq = hl%cap
        s = hl%cap / hl%ths
        ls = log(max(s, tiny(1.0_r8)))
        dtheta_dpsi = 0.0_r8
      end if
      if (s > 0.0_r8) then
        hk = hl%imped * hl%ksat * exp((2.0_r8 * hl%b + 3.0_r8) * ls)
      else
        hk = 0.0_r8
      end if
      dhk_dpsi = (2.0_r8 * hl%b + 3.0_r8) * hk / max(vol_liq, tiny(1.0_r8)) * dtheta_dpsi
    end if
  end subroutine layer_state_psi

  ! The vG-Mualem state at x = alpha |h| from S*, the Mualem factor f and x^(n-1) / (1 + x^n) (shared by
  ! layer_state_psi and layer_state_theta).
  pure subroutine vg_state_from_sstar(hl, x, sstar, f, xr, at_cap, vol_liq, dtheta_dpsi, hk, dhk_dpsi)
    type(hyd_layer_t), intent(in) :: hl          ! layer constants (mixed)
    real(r8), intent(in) :: x                    ! alpha |h| (-)
    real(r8), intent(in) :: sstar                ! S* = (1 + x^n)^(-m) (-)
    real(r8), intent(in) :: f                    ! Mualem factor 1 - (1 - S*^(1/m))^m (-)
    real(r8), intent(in) :: xr                   ! x^(n-1) / (1 + x^n) (-)
    logical, intent(in) :: at_cap                ! h is held at the ice cap: zero capacity and dK/dh (-)
    real(r8), intent(out) :: vol_liq             ! liquid content (m3 m-3)
    real(r8), intent(out) :: dtheta_dpsi         ! d vol_liq / d smp (m3 m-3 mm-1)
    real(r8), intent(out) :: hk                  ! hydraulic conductivity (mm s-1)
    real(r8), intent(out) :: dhk_dpsi            ! d hk / d smp (s-1)
    real(r8) :: se, sel                          ! Se, Se^L (-)
    se = sstar * hl%rsc
    if (hl%l == 0.5_r8) then
      sel = sqrt(se)
    else
      sel = se**hl%l
    end if
    vol_liq = min(hl%thr + (hl%ths - hl%thr) * se, hl%cap)
    hk = hl%kfc * sel * (f * f)
    if (at_cap) then
      dtheta_dpsi = 0.0_r8
      dhk_dpsi = 0.0_r8
      return
    end if
    ! dS*/dh = m n alpha xr S* with dx/dh = -alpha; w = x^(n-1) S* = 1 - f has dw/dh = -alpha (n-1) xr S* / x, so
    ! dlnK/dh = L dS*/dh / S* - 2 (dw/dh) / f (one division)
    dtheta_dpsi = hl%dth_sc * (hl%mna * xr * sstar)
    dhk_dpsi = hk * (hl%l * hl%mna * xr + 2.0_r8 * hl%alpha * (hl%n - 1.0_r8) * (xr * sstar) / (x * f))
  end subroutine vg_state_from_sstar

  ! The matric potential of an ice-free vG layer at liquid content theta together with the state layer_state_psi
  ! gives at that potential, reusing the inverse's S* and x^n (no further exp/log in wet soil, a log1p / expm1
  ! pair in dry soil): where a solve starts from a water content, this replaces a full forward evaluation.
  ! ok = .false. (nothing computed) outside that case: Campbell, ice, saturation, clipping at smpmin.
  pure subroutine layer_state_theta(hl, theta, smp, vol_liq, dtheta_dpsi, hk, dhk_dpsi, ok)
    type(hyd_layer_t), intent(in) :: hl          ! layer constants (mixed)
    real(r8), intent(in) :: theta                ! liquid content (m3 m-3)
    real(r8), intent(out) :: smp                 ! matric potential (mm, < psi_e)
    real(r8), intent(out) :: vol_liq             ! liquid content of the forward function at smp (m3 m-3)
    real(r8), intent(out) :: dtheta_dpsi         ! d vol_liq / d smp (m3 m-3 mm-1)
    real(r8), intent(out) :: hk                  ! hydraulic conductivity (mm s-1)
    real(r8), intent(out) :: dhk_dpsi            ! d hk / d smp (s-1)
    logical, intent(out) :: ok                   ! the case was handled (-)
    real(r8) :: s, ss, xn, x, u, f, xr           ! Se, S*, x^n, alpha|h|, x^-n, Mualem f, x^(n-1)/(1+x^n) (-)
    ok = .false.
    if (hl%model /= HYDR_VG .or. hl%cap < hl%ths) return
    s = (theta - hl%thr) / (hl%ths - hl%thr)
    if (s >= 1.0_r8 .or. s <= 0.0_r8) return
    call vg_inverse(hl, s, ss, xn, x, ok)
    if (.not. ok) return
    smp = -x / hl%alpha
    ok = smp < hl%psis
    if (.not. ok) return
    if (x <= 1.0_r8) then
      f = 1.0_r8 - (xn / x) * ss
      xr = (xn / x) / (1.0_r8 + xn)
    else
      u = 1.0_r8 / xn
      f = -expm1_r8(-hl%m * log1p_r8(u))
      xr = 1.0_r8 / (x * (1.0_r8 + u))
    end if
    call vg_state_from_sstar(hl, x, ss, f, xr, .false., vol_liq, dtheta_dpsi, hk, dhk_dpsi)
    if (smp > hl%hreg) then
      hk = hl%kreg + hl%sreg * (smp - hl%hreg)
      dhk_dpsi = hl%sreg
    end if
    ok = .true.
  end subroutine layer_state_theta

  ! Hydraulic conductivity and its derivative with respect to the liquid content. The relative conductivity uses
  ! the liquid saturation and is multiplied by the ice impedance (CoLM2014).
  pure subroutine soil_conductivity(hydr_model, sp, vol_liq, vol_ice, hk, dhk_dtheta)
    integer(ik), intent(in) :: hydr_model        ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: sp(NSP)              ! soil parameters of the layer, SP_* (mixed)
    real(r8), intent(in) :: vol_liq              ! volumetric liquid water content (m3 m-3)
    real(r8), intent(in) :: vol_ice              ! volumetric ice content (m3 m-3)
    real(r8), intent(out) :: hk                  ! hydraulic conductivity (mm s-1)
    real(r8), intent(out) :: dhk_dtheta          ! d hk / d vol_liq (mm s-1 per m3 m-3)
    real(r8) :: ths, thr, ksat, imped            ! porosity, residual (m3 m-3), Ksat (mm s-1), impedance (-)
    real(r8) :: s, b                             ! relative saturation (-), Campbell exponent (-)
    real(r8) :: n, m, l, sc, fc, ss, lns, u, w, wm, f, dfds ! Mualem terms (-)

    ths = sp(SP_THETA_S)
    ksat = sp(SP_KSAT)
    imped = ice_impedance(vol_ice, ths)
    if (hydr_model == HYDR_VG .or. hydr_model == HYDR_VG_CLASSIC .or. hydr_model == HYDR_GARDNER) then
      thr = sp(SP_THETA_R)
      s = (min(max(vol_liq, 0.0_r8), max(ths - max(vol_ice, 0.0_r8), 0.0_r8)) - thr) / (ths - thr)
      if (s <= 0.0_r8) then
        hk = 0.0_r8
        dhk_dtheta = 0.0_r8
        return
      end if
      if (s >= 1.0_r8) then
        hk = imped * ksat
        dhk_dtheta = 0.0_r8
        return
      end if
      if (hydr_model == HYDR_GARDNER) then
        hk = imped * ksat * s
        dhk_dtheta = imped * ksat / (ths - thr)
        return
      end if
      n = sp(SP_N_VG)
      m = 1.0_r8 - 1.0_r8 / n
      l = sp(SP_L_VG)
      if (vg_psi_e(hydr_model, sp) < 0.0_r8) then
        sc = (1.0_r8 + (-sp(SP_ALPHA_VG) * vg_psi_e(hydr_model, sp))**n)**(-m)
        fc = mualem_f(-sp(SP_ALPHA_VG) * vg_psi_e(hydr_model, sp), n)
      else
        sc = 1.0_r8
        fc = 1.0_r8
      end if
      ss = s * sc
      lns = log(ss)
      u = exp(lns / m)
      w = -expm1_r8(lns / m)
      ! f = 1 - (1 - u)^m without cancellation in dry soil (u small)
      wm = exp(m * log1p_r8(-u))
      f = -expm1_r8(m * log1p_r8(-u))
      hk = imped * ksat * s**l * (f / fc)**2
      dfds = (wm / w) * u / ss * sc
      dhk_dtheta = imped * ksat * s**l * (f / fc) * (l * (f / fc) / s + 2.0_r8 * dfds / fc) / (ths - thr)
    else
      b = sp(SP_BSW)
      s = min(1.0_r8, min(max(vol_liq, 0.0_r8), max(ths - max(vol_ice, 0.0_r8), 0.0_r8)) / ths)
      if (s <= 0.0_r8) then
        hk = 0.0_r8
        dhk_dtheta = 0.0_r8
      else if (s >= 1.0_r8) then
        hk = imped * ksat
        dhk_dtheta = 0.0_r8
      else
        hk = imped * ksat * s**(2.0_r8 * b + 3.0_r8)
        dhk_dtheta = (2.0_r8 * b + 3.0_r8) * hk / (s * ths)
      end if
    end if
  end subroutine soil_conductivity
end module colm_hydraulics
